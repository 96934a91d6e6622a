"""The Prometheus source against a fake server on 127.0.0.1 that answers badly: the poll keeps its deadline and
its health, whatever the HTTP side does."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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

    do_POST = do_GET

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
        with pytest.raises(PrometheusError, match="did not answer within 0.5 s"):
            source.history("vm-1", "cpu_utilization", 0, 60, 15)
        assert time.monotonic() - started < 1.5
    finally:
        source.close()
