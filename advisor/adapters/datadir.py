"""One advisor per data directory: an exclusive lock, and where that advisor listens (for local tools).

The lock is an fcntl lock on `DIR/advisor.lock`, held for the life of the process and released by the kernel
when the process dies however it dies (no stale lock to clean up after a kill -9). Beside it, `DIR/advisor.json`
says the running server's pid and addresses.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from pathlib import Path
from typing import Any, TextIO

from advisor.domain.errors import SetupError

LOCK_FILE = "advisor.lock"
ADDRESS_FILE = "advisor.json"


class DataDirInUse(SetupError, RuntimeError):
    """Another advisor holds the data directory."""


class DataDirLock:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        data_dir.mkdir(parents=True, exist_ok=True)
        self._file: TextIO | None = open(data_dir / LOCK_FILE, "a+")  # noqa: SIM115 - held for the process's life
        try:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            self._file = None
            owner = read_addresses(data_dir).get("pid", "unknown")
            raise DataDirInUse(f"another advisor (pid {owner}) is serving {data_dir}; stop it first, or give this "
                               "one another --data-dir") from None

    def publish(self, addresses: dict[str, Any]) -> None:
        """Record the pid and the addresses of this server beside the lock (atomically)."""
        path = self.data_dir / ADDRESS_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), **addresses}, sort_keys=True) + "\n")
        tmp.replace(path)

    def release(self) -> None:
        if self._file is None:
            return
        with contextlib.suppress(OSError):
            (self.data_dir / ADDRESS_FILE).unlink()
        fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
        self._file.close()
        self._file = None


def read_addresses(data_dir: Path) -> dict[str, Any]:
    """What the advisor serving `data_dir` published (pid, grpc and metrics addresses); {} if none runs."""
    try:
        found = json.loads((data_dir / ADDRESS_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}
