"""The web listener: cheroot (CherryPy's WSGI server: a pool of worker threads, idle keep-alive connections held
by a selector, not a thread) on `metrics_listen`, serving /metrics and the page (advisor.web.handler), over TLS
when the advisor has a certificate.

On top of cheroot's own limits (request line and header size, a socket timeout per read):
- a whole-request deadline: a connection a worker has taken must have sent its request and received the answer
  within REQUEST_DEADLINE_S, else it is shut (a timeout per read lets a header line every 5 s hold a worker
  forever);
- while every worker is busy, a connection still sending its headers after SLOW_HEADERS_S is shut, so slow
  clients make way for the others however many they are;
- the TLS handshake happens in the worker, under that deadline (cheroot does it in the thread that accepts, where
  one silent client would hold up every other); with a client CA, a client must present a certificate it signed;
- at most MAX_WAITING connections wait for a worker; beyond, 503 at once;
- a listen backlog of BACKLOG (cheroot's default is 5).
Each refusal is counted (advisor_http_refusals_total{reason}). cheroot's own messages go to the log, as JSON
lines like the rest, never raw to stderr. `stop` shuts every connection still open and joins every thread.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, cast

from cheroot import wsgi
from cheroot.server import HTTPConnection, HTTPRequest
from cheroot.ssl.builtin import BuiltinSSLAdapter
from prometheus_client import CollectorRegistry

from advisor.web import origin
from advisor.web.handler import WebApp
from advisor.web.views import WebSources

log = logging.getLogger("advisor.web")

WORKERS = 48
MAX_WAITING = 256
BACKLOG = 128
REQUEST_DEADLINE_S = 10.0
READ_TIMEOUT_S = 15  # one read: beyond the deadline, which ends a request first (counted); an idle keep-alive
# connection (held by the selector, not a worker) is closed after as long
SLOW_HEADERS_S = 1.0
SWEEP_S = 0.2
MAX_HEADERS_BYTES = 64 << 10
MAX_BODY_BYTES = 64 << 10  # only a login takes one, and reads at most 1 KiB of it (handler.MAX_BODY_BYTES)
BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True)
class TlsFiles:
    """The certificate and key (PEM files) the gRPC server uses too."""

    cert: str
    key: str
    client_ca: str = ""  # with one, clients must present a certificate it signed (mutual TLS)


@dataclass
class _Taken:
    started: float
    headers_in: bool = False


class _Deadlines:
    """The connections workers hold, since when and whether their headers are in; a thread shuts the late ones."""

    def __init__(self, refused: Any, all_busy: Any, deadline_s: float) -> None:
        self._refused = refused
        self._all_busy = all_busy
        self._deadline_s = deadline_s
        self._taken: dict[HTTPConnection, _Taken] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="web-deadlines", daemon=True)
        self._thread.start()

    def begin(self, conn: HTTPConnection) -> None:
        with self._lock:
            self._taken[conn] = _Taken(time.monotonic())

    def headers_in(self, conn: HTTPConnection) -> None:
        with self._lock:
            if conn in self._taken:
                self._taken[conn].headers_in = True

    def end(self, conn: HTTPConnection) -> None:
        with self._lock:
            self._taken.pop(conn, None)

    def sweep(self) -> None:
        now, busy = time.monotonic(), self._all_busy()
        late = []
        with self._lock:
            for conn, taken in list(self._taken.items()):
                if now - taken.started > self._deadline_s:
                    late.append((conn, "deadline"))
                elif busy and not taken.headers_in and now - taken.started > SLOW_HEADERS_S:
                    late.append((conn, "slow_headers"))
                else:
                    continue
                del self._taken[conn]
        for conn, reason in late:
            _shut(conn)
            self._refused(reason)

    def shut_all(self) -> None:
        with self._lock:
            taken, self._taken = list(self._taken), {}
        for conn in taken:
            _shut(conn)

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(SWEEP_S):
            self.sweep()


def _shut(conn: HTTPConnection) -> None:
    """End a connection from another thread: its worker's read or write returns at once. The plain socket's
    shutdown, also under TLS (SSLSocket.shutdown would drop the TLS state the worker is using)."""
    with contextlib.suppress(OSError):
        socket.socket.shutdown(conn.socket, socket.SHUT_RDWR)


class _Request(HTTPRequest):
    def parse_request(self) -> None:
        super().parse_request()
        _server(self.server).deadlines.headers_in(self.conn)


class _Connection(HTTPConnection):
    RequestHandlerClass = _Request
    handshaken = False

    def communicate(self) -> bool:
        server = _server(self.server)
        server.deadlines.begin(self)
        try:
            return self._handshake() and bool(super().communicate())  # type: ignore[no-untyped-call]
        finally:
            server.deadlines.end(self)

    def _handshake(self) -> bool:
        if self.handshaken or not isinstance(self.socket, ssl.SSLSocket):
            return True
        try:
            self.socket.do_handshake()
        except OSError as error:  # plain HTTP on the TLS port, a bad or silent client, shut by the deadline
            log.debug("web TLS handshake failed", extra={"peer": getattr(self, "remote_addr", "?"),
                                                         "error": str(error)[:200]})
            _server(self.server).app.refused("tls_handshake")
            return False
        self.handshaken = True
        return True


class _LazyTls(BuiltinSSLAdapter):
    """cheroot's TLS adapter, with the handshake left to the worker (`_Connection._handshake`), and client
    certificates required when a client CA is given."""

    def __init__(self, files: TlsFiles) -> None:
        super().__init__(files.cert, files.key)
        if files.client_ca:
            self.context.load_verify_locations(cafile=files.client_ca)
            self.context.verify_mode = ssl.CERT_REQUIRED

    def wrap(self, sock: socket.socket) -> tuple[ssl.SSLSocket, dict[str, str]]:
        wrapped = self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return wrapped, {"wsgi.url_scheme": "https", "HTTPS": "on"}


class _Server(wsgi.Server):
    ConnectionClass = _Connection

    def __init__(self, address: tuple[str, int], app: WebApp, deadline_s: float) -> None:
        super().__init__(address, app, numthreads=WORKERS, max=WORKERS, server_name="advisor",
                         request_queue_size=BACKLOG, timeout=READ_TIMEOUT_S, shutdown_timeout=2)
        self.app = app
        self.max_request_header_size = MAX_HEADERS_BYTES
        self.max_request_body_size = MAX_BODY_BYTES
        self.deadlines = _Deadlines(app.refused, self._all_busy, deadline_s)

    def _all_busy(self) -> bool:
        return bool(self.ready and self.requests.idle <= 0)

    def process_conn(self, conn: HTTPConnection) -> None:
        if self.requests.qsize >= MAX_WAITING:
            if not isinstance(conn.socket, ssl.SSLSocket):
                with contextlib.suppress(OSError):
                    conn.socket.sendall(BUSY)
            conn.close()
            self.app.refused("overload")
            return
        super().process_conn(conn)

    def error_log(self, msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        """cheroot's messages: into the log. What it says at INFO is about a client (a dropped connection)."""
        log.log(level if level > logging.INFO else logging.DEBUG, "web listener: %s", msg, exc_info=traceback)


def _server(server: Any) -> _Server:
    return cast(_Server, server)


class WebServer:
    def __init__(self, listen: str, sources: WebSources, registry: CollectorRegistry, *, tls: TlsFiles | None = None,
                 deadline_s: float = REQUEST_DEADLINE_S) -> None:
        host, _, port = listen.rpartition(":")
        host = (host or "127.0.0.1").strip("[]")
        self.scheme = "https" if tls else "http"
        app = WebApp(sources, registry, host_names=origin.listener_names(host))
        self._httpd = _Server((host, int(port)), app, deadline_s)
        if tls is not None:
            self._httpd.ssl_adapter = _LazyTls(tls)
        try:
            self._httpd.prepare()
        except BaseException:
            self._httpd.deadlines.stop()
            raise
        self._thread = threading.Thread(target=self._httpd.serve, name="web", daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(cast(tuple[str, int], self._httpd.bind_addr)[1])

    def stop(self) -> None:
        self._httpd.deadlines.shut_all()  # idle or slow clients end now, not at their timeout
        self._httpd.stop()  # closes the listening socket and the idle connections, joins the workers
        self._thread.join()
        self._httpd.deadlines.stop()
