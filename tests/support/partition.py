"""A TCP relay to a server (PostgreSQL, in the tests of replicas) that a test can cut as a network partition does:
once `cut`, nothing passes either way and connections hang, without a reset; `heal` resets the connections made
before (the bytes dropped meanwhile broke them) and lets new ones through; `close` ends everything."""

from __future__ import annotations

import contextlib
import socket
import threading


class Partition:
    def __init__(self, upstream_port: int) -> None:
        self._upstream = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self.cut = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True, name="partition").start()

    def url(self, url: str) -> str:
        """`url` (of the server on 127.0.0.1 at the upstream port) through this relay."""
        through = url.replace(f"127.0.0.1:{self._upstream}/", f"127.0.0.1:{self.port}/")
        if through == url:
            raise ValueError(f"{url}: not a URL of 127.0.0.1:{self._upstream}")
        return through

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._upstream))
            with self._lock:
                self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._relay, args=(source, sink), daemon=True).start()

    def _relay(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if not self.cut.is_set():  # cut: dropped, as by a partition
                    sink.sendall(data)

    def _reset(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def heal(self) -> None:
        self._reset()
        self.cut.clear()

    def close(self) -> None:
        self._listener.close()
        self._reset()
