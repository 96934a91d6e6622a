"""Headless Chromium (Debian's `chromium`) driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
JSON messages ended by NUL, commands on the browser's fd 3, answers on its fd 4), so a test can measure the page as
laid out (widths, heights) and act on it (click), not only read the DOM it ends with."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any


class Browser:
    def __init__(self, profile: Path, width: int, height: int) -> None:
        browser = shutil.which("chromium")
        assert browser, "chromium is missing: scripts/setup.sh installs Debian's chromium package"
        commands_r, self._commands = os.pipe()
        self._answers, answers_w = os.pipe()
        flags = ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
                 "--remote-debugging-pipe", f"--user-data-dir={profile}", "--force-device-scale-factor=1",
                 f"--window-size={width},{height}", "about:blank"]
        # bash (dash takes single-digit fds only) puts the two pipe ends on the fds the protocol names, then
        # becomes the browser.
        self._process = subprocess.Popen(["bash", "-c", f'exec "$0" "$@" 3<&{commands_r} 4>&{answers_w}', browser,
                                          *flags], pass_fds=(commands_r, answers_w), stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL)
        os.close(commands_r)
        os.close(answers_w)
        self._buffer = b""
        self._next_id = 0
        self._size = (width, height)
        self._session = ""

    def call(self, method: str, timeout_s: float = 30, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        ident = self._next_id
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if self._session:
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            while b"\0" not in self._buffer:
                assert time.monotonic() < deadline, f"{method}: no answer from chromium"
                chunk = os.read(self._answers, 1 << 16)
                assert chunk, "chromium exited"
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            answer = json.loads(raw)
            if answer.get("id") == ident:
                assert "error" not in answer, (method, answer["error"])
                result: dict[str, Any] = answer.get("result", {})
                return result

    def open(self, url: str) -> None:
        """A page of the window's size, navigated to `url`; later calls act on it."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        width, height = self._size
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        self.call("Page.navigate", url=url)

    def navigate(self, url: str) -> None:
        """The open page navigated to `url`, in the same tab (its sessionStorage kept, per origin)."""
        self.call("Page.navigate", url=url)

    def resize(self, width: int, height: int) -> None:
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited)."""
        found = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in found, found["exceptionDetails"]
        return found["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 20) -> Any:
        deadline = time.monotonic() + timeout_s
        while not (value := self._poll(expression)):
            assert time.monotonic() < deadline, f"timed out waiting for {expression}"
            time.sleep(0.1)
        return value

    def _poll(self, expression: str) -> Any:
        """`evaluate`, where an evaluation a navigation cut off is "not yet": the page waited for may be loading
        (on a loaded machine Chromium answered "Inspected target navigated or closed")."""
        try:
            return self.evaluate(expression)
        except AssertionError as error:
            if "Inspected target navigated or closed" not in str(error):
                raise
            return None

    def screenshot(self) -> bytes:
        return base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])

    def close(self) -> None:
        self._process.terminate()
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        os.close(self._commands)
        os.close(self._answers)
