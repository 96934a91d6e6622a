"""The web listener: the standard library's threading WSGI server on `metrics_listen`, serving /metrics as
before and the page beside it (advisor.web.handler).

A request has its own thread, at most MAX_REQUESTS at once (beyond that a connection gets 503 at once, so a
flood of idle connections cannot take every thread), each with a socket timeout; `stop` ends the serving loop,
closes the connections still open and joins every request thread, so nothing is left running.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry

from advisor.web.handler import WebApp
from advisor.web.views import WebSources

MAX_REQUESTS = 32
REQUEST_TIMEOUT_S = 10.0
BUSY = b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"


class _Quiet(WSGIRequestHandler):
    """No access log on stderr (the advisor logs JSON lines; requests are counted in its metrics)."""

    timeout = REQUEST_TIMEOUT_S

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = False  # joined by server_close: no request outlives `stop`
    block_on_close = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.slots = threading.BoundedSemaphore(MAX_REQUESTS)
        self.open: set[socket.socket] = set()
        self.open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self.slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.sendall(BUSY)
            self.shutdown_request(request)
            return
        with self.open_lock:
            self.open.add(request)
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._done(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done(request)

    def _done(self, request: socket.socket) -> None:
        with self.open_lock:
            self.open.discard(request)
        self.slots.release()

    def close_connections(self) -> None:
        """End the connections still open (an idle or slow client), so that their threads end now."""
        with self.open_lock:
            for request in self.open:
                with contextlib.suppress(OSError):
                    request.shutdown(socket.SHUT_RDWR)


class WebServer:
    def __init__(self, listen: str, sources: WebSources, registry: CollectorRegistry) -> None:
        host, _, port = listen.rpartition(":")
        host = (host or "127.0.0.1").strip("[]")
        family = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
        server_class = type("_FamilyServer", (_Server,), {"address_family": family})
        self._httpd: _Server = make_server(host, int(port), WebApp(sources, registry), server_class, _Quiet)
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="web", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self._httpd.server_port)

    def stop(self) -> None:
        self._httpd.shutdown()
        self._thread.join()
        self._httpd.close_connections()
        self._httpd.server_close()  # joins the request threads
