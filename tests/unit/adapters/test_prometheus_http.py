"""The Prometheus source against a fake server on 127.0.0.1 that answers badly: the poll keeps its deadline and
its health, whatever the HTTP side does."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest

from advisor.adapters.prometheus.queries import PrometheusError
from advisor.adapters.prometheus.source import PrometheusSource

EMPTY = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}).encode()


class _Trickle(BaseHTTPRequestHandler):
    """Answers every query with a valid empty vector, one byte every 50 ms: each read is quick, the answer is not."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(EMPTY)))
        self.end_headers()
        try:
            for byte in EMPTY:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.05)
        except OSError:
            pass  # the client gave up

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def trickle() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("workers", [1, 4])
def test_a_server_that_trickles_its_answer_does_not_hold_a_poll_past_its_deadline(trickle: str, workers: int) -> None:
    source = PrometheusSource(trickle, timeout_s=0.5, workers=workers)
    try:
        started = time.monotonic()
        result = source.poll(["h1"], ["vm-1"])
        took = time.monotonic() - started
        assert not result.health.ok and "did not answer within 0.5 s" in (result.health.last_error or "")
        assert took < 1.5  # the whole answer takes about 4 s
        started = time.monotonic()
        with pytest.raises(PrometheusError, match=r"did not answer within 0\.5 s"):
            source.history("vm-1", "cpu_utilization", 0, 60, 15)
        assert time.monotonic() - started < 1.5
    finally:
        source.close()


class _Flaky(BaseHTTPRequestHandler):
    """HTTP 500 while `down`, else a vector with one NaN series of host h1 per query (so unlabelled for VM ones)."""

    down = True

    def do_GET(self) -> None:
        body = b"internal error" if self.down else json.dumps({"status": "success", "data": {
            "resultType": "vector", "result": [{"metric": {"instance": "h1:9100"}, "value": [time.time(), "NaN"]}]},
        }).encode()
        self.send_response(500 if self.down else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_an_outage_and_recurring_skips_are_logged_once_not_at_every_poll(caplog: pytest.LogCaptureFixture) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    caplog.set_level(logging.INFO, logger="advisor.telemetry.prometheus")
    try:
        with PrometheusSource(f"http://127.0.0.1:{server.server_port}", timeout_s=2, workers=1) as source:
            _Flaky.down = True
            for _ in range(3):
                assert not source.poll(["h1"], []).health.ok
            _Flaky.down = False
            for _ in range(3):
                result = source.poll(["h1"], [])
                assert result.health.ok and result.skipped == {"non_finite": 5, "unlabelled": 3}  # at every poll
    finally:
        server.shutdown()
        server.server_close()
    said = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert said == [("WARNING", "prometheus poll failed"), ("INFO", "prometheus answers again"),
                    ("INFO", "prometheus series skipped")]


class _Huge(BaseHTTPRequestHandler):
    """A vector of 200,000 series (11 MiB), with its length declared or sent in chunks without one."""

    body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"instance": f"x{i}"}, "value": [1, "1"]} for i in range(200_000)]}}).encode()

    def do_GET(self) -> None:
        chunked = "chunked" in self.path
        self.send_response(200)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        try:
            for start in range(0, len(self.body), 1 << 16):
                piece = self.body[start:start + (1 << 16)]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client stopped reading

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(("path", "said"), [
    ("", "sent an answer of 11 MiB (at most 1 MiB read) for query host_cpu"),
    ("/chunked", "sent an answer of more than 1 MiB for query host_cpu"),
])
def test_an_answer_larger_than_the_cap_fails_the_poll_unread(path: str, said: str) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Huge)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with PrometheusSource(f"http://127.0.0.1:{server.server_port}{path}", timeout_s=5, workers=1,
                              max_answer_bytes=1 << 20) as source:
            result = source.poll(["h1"], [])
    finally:
        server.shutdown()
        server.server_close()
    assert not result.health.ok and said in (result.health.last_error or "")


class _Refusing(BaseHTTPRequestHandler):
    """Answers each path with its own kind of refusal."""

    answers: ClassVar[dict[str, tuple[int, bytes]]] = {
        "/bad": (400, b'{"status": "error", "errorType": "bad_data", "error": "1:5: parse error"}'),
        "/proxy": (404, b"<html>\n  <title>Not Found</title>\n</html>"),
        "/ok-but-error": (200, b'{"status": "error", "errorType": "execution", "error": "boom"}'),
    }

    def do_GET(self) -> None:
        status, body = self.answers[self.path.split("/api/")[0]]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(("path", "said"), [
    ("/bad", "': HTTP 400 bad_data: 1:5: parse error"),  # spaces in the JSON, errorType kept
    ("/proxy", "': HTTP 404: <html> <title>Not Found</title> </html>"),
    ("/ok-but-error", "answered query host_cpu without its data (status not success, or no Prometheus query API"),
])
def test_a_refusal_is_reported_in_one_clear_line(path: str, said: str) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with PrometheusSource(f"http://127.0.0.1:{server.server_port}{path}", timeout_s=2, workers=1) as source:
            error = source.poll(["h1"], []).health.last_error or ""
    finally:
        server.shutdown()
        server.server_close()
    assert said in error and "\n" not in error


class _Range(BaseHTTPRequestHandler):
    """A matrix with points before, inside and after the window asked for (0 to 60 s)."""

    def do_GET(self) -> None:
        points = [[-3600, "0.1"], [0, "0.2"], [30, "0.3"], [60, "0.4"], [7200, "0.9"]]
        body = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"domain": "vm-1"}, "values": points}]}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_history_keeps_only_the_points_of_the_window_asked_for() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Range)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with PrometheusSource(f"http://127.0.0.1:{server.server_port}", timeout_s=2, workers=1) as source:
            points = source.history("vm-1", "cpu_utilization", 0, 60, 30)
    finally:
        server.shutdown()
        server.server_close()
    assert points == [(0.0, 0.2), (30.0, 0.3), (60.0, 0.4)]
