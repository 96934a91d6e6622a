"""A real PostgreSQL server for the tests, from Debian's package (`scripts/setup.sh` installs `postgresql`).

One server per test session: initdb and postgres run in a fresh temporary directory, listening on a free port of
127.0.0.1 and on a unix socket in that directory, and are stopped and removed at the end. PostgreSQL refuses to
run as root, so under root (as CI runs) they run as the `postgres` user the package creates. Each test that asks
for `postgres_url` gets a database of its own, dropped afterwards.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

BIN_ROOT = Path("/usr/lib/postgresql")
START_TIMEOUT_S = 60


def _bin_dir() -> Path:
    """The newest PostgreSQL installed by Debian's packages."""
    found = sorted(BIN_ROOT.glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise RuntimeError(f"no PostgreSQL under {BIN_ROOT}: run scripts/setup.sh (it installs Debian's postgresql)")
    return found[-1].parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    USER = "advisor"

    def __init__(self, *, durable: bool = False) -> None:
        self.durable = durable  # PostgreSQL's defaults (fsync, synchronous commit), for benchmarks
        self.bin = _bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="advisor-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._as: dict[str, Any] = {}
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            self._as = {"user": "postgres", "group": "postgres", "extra_groups": []}
        self._names = itertools.count(1)
        self.started = False

    def _run(self, *command: str) -> None:
        done = subprocess.run([str(self.bin / command[0]), *command[1:]], cwd=self.root, capture_output=True,
                              text=True, timeout=START_TIMEOUT_S, check=False, **self._as)
        if done.returncode != 0:
            raise RuntimeError(f"{command[0]} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")

    def start(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", self.USER, "--auth=trust", "-E", "UTF8", "--no-sync")
        options = f"-p {self.port} -h 127.0.0.1 -k {self.root} -c max_connections=200"
        if not self.durable:  # not what the tests are about: without fsync the server is quicker on a loaded machine
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run("pg_ctl", "start", "-D", str(self.data), "-w", "-t", str(START_TIMEOUT_S), "-o", options,
                  "-l", str(self.root / "server.log"))
        self.started = True

    def restart(self) -> None:
        """Stop the server at once (every connection is cut) and start it again on the same port."""
        self._run("pg_ctl", "restart", "-D", str(self.data), "-m", "fast", "-w", "-t", str(START_TIMEOUT_S),
                  "-l", str(self.root / "server.log"))  # the log: the server must not hold this process's pipes

    def url(self, database: str = "postgres", *, unix_socket: bool = False) -> str:
        if unix_socket:  # libpq's form: the socket's directory as the host parameter
            return f"postgresql://{self.USER}@/{database}?host={self.root}&port={self.port}"
        return f"postgresql://{self.USER}@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        with psycopg.connect(self.url(), autocommit=True) as admin:
            admin.execute(sql)

    def new_database(self) -> str:
        name = f"t{next(self._names)}"
        self._admin(f"CREATE DATABASE {name}")
        return name

    def drop_database(self, name: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        try:
            if self.started:
                self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "immediate", "-w")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_database(postgres_server: PostgresServer) -> Iterator[str]:
    """The name of an empty database of this test's own."""
    name = postgres_server.new_database()
    yield name
    postgres_server.drop_database(name)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, postgres_database: str) -> str:
    """The URL (over TCP) of an empty database of this test's own."""
    return postgres_server.url(postgres_database)
