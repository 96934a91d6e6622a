"""Shared fixtures: a real advisor server on loopback, built by the same wiring as `advisor serve`."""

from __future__ import annotations

import os

# LightGBM's OpenMP threads wait for work by spinning (GNU OpenMP's default, read when the library loads): on this
# 2-core machine they take the cores from the other threads and processes of a test (the server a retrain runs
# under, a loaded machine's other jobs), and a short retrain took 4 times longer than with threads that sleep.
# The models trained are the same (the waiting, not the work, changes); subprocesses inherit it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from advisor.api.client import AdvisorClient
from advisor.app import App, build_app
from advisor.config import Settings
from advisor.domain.access import Role
from advisor.execution.hypervisor import Hypervisor
from tests.support import local_settings

# The session-wide lab of real libvirt daemons, for tests/lab and the libvirt half of tests/contract; a PostgreSQL
# server, for the PostgreSQL half of the stores' contract.
pytest_plugins = ["tests.support.lab", "tests.support.postgres"]


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """Under `-n 2` (scripts/test.sh): the unit tests, pure and in-process, spread over both workers one by one,
    while every test of real processes (daemons, servers, the lab's guests, training) goes to one worker, one after
    another as alone: they share session-wide daemons and time real migrations. (xdist's `loadgroup` cannot say
    this with pytest 9: it renames the tests through an attribute pytest no longer reads.)"""
    from xdist.scheduler import LoadScopeScheduling

    class RealProcessesTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return nodeid if nodeid.startswith("tests/unit/") else "real processes"

    return RealProcessesTogether(config, log)


@pytest.fixture(autouse=True)
def _terminal_width_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tables fit $COLUMNS where it is set (xdist's workers set 80): a test sets its own width or has none."""
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[object]:
    """Build and start apps on an ephemeral loopback port; all are stopped at the end of the test."""
    started: list[App] = []

    def make(data_dir: Path | None = None, models_dir: Path | None = None,
             connect: Callable[[str], Hypervisor] | None = None, **settings: object) -> App:
        # No background dirty-rate measurement unless asked: these hosts have no real hypervisor.
        app = build_app(local_settings(data_dir or tmp_path / "data", models_dir=models_dir or Settings().models_dir,
                                       **settings), **({"connect": connect} if connect else {}))
        app.start()
        started.append(app)
        return app

    yield make
    for app in started:
        if app.server is not None:
            app.stop()
        app.lock.release()


@pytest.fixture
def client_for() -> Iterator[object]:
    clients: list[AdvisorClient] = []

    def connect(app: App, role: Role = Role.ADMIN, name: str = "") -> AdvisorClient:
        """A client of `app` with a fresh token of `role` (named `test-ROLE` unless `name` is given)."""
        assert app.server is not None
        token = app.tokens.renew(name or f"test-{role.label}", role)
        client = AdvisorClient(f"127.0.0.1:{app.server.port}", token=token, timeout_s=20)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        client.close()
