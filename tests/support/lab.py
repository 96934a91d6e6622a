"""The `lab` fixture (a pytest plugin of tests/conftest.py): one real 2-host, 1-guest lab for the whole test session.

    def test_something(lab: Lab) -> None:
        src = lab.host_of("vm1")                      # "hv1" or "hv2": wherever vm1 runs now
        dst = "hv2" if src == "hv1" else "hv1"
        conn = libvirt.open(lab.uri(src))             # qemu+unix:///system?socket=<abs path>
        dom = conn.lookupByName("vm1")
        dom.migrateToURI3(lab.uri(dst), lab.migration_params(), VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER)
        assert lab.guest_alive("vm1", within_s=5)
        lab.set_dirty_rate("vm1", 16)                 # MiB/s of changing random data; 0 stops it
        lab.set_dirty_schedule("vm1", [(5, 8), (5, 32)], repeat=True)
        lab.measure_dirty_rate("vm1")                 # one noisy page-sampling reading, MiB/s
        lab.status()                                  # LabStatus: hosts, guests, Prometheus URL, exporters

What the fixture promises when a test starts: hosts "hv1" and "hv2" answer, guest "vm1" (128 MiB, 1 vCPU, TCG)
runs on one of them, and Prometheus scrapes both hosts' libvirt exporters (`lab.status().prometheus_url`).
It does not promise where vm1 runs or its dirty rate: set what you need. A test that breaks the lab (kills a
daemon, destroys the guest) repairs it with `lab.up(2, 1)`, which restarts only what is missing.

The lab lives in $ADVISOR_LAB_TEST_ROOT (default /tmp/advisor-lab-test, short because unix socket paths are
limited to 107 bytes) and shares its caches (guest image, QEMU capabilities) with the developer lab in .lab/cache.
Needs root, libvirtd and QEMU (scripts/setup.sh); skipped otherwise.

The advisor's executor on a lab (this one or a module's own), with its SQLite store; stopped at the test's end:

    def test_move(lab: Lab, lab_executor: StartExecutor, lab_store: SqliteStore) -> None:
        executor = lab_executor(lab, RecordingObserver(), tuning=TUNING)   # Executor options after the observer
        op = executor.submit(...).operation_id
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from advisor.adapters.libvirt import LibvirtHypervisor
from advisor.adapters.sqlite.db import SqliteStore
from advisor.execution.executor import ExecutionObserver, Executor, HostEndpoint
from advisor.execution.hypervisor import MigrationTarget
from advisor.lab import DEFAULT_ROOT, Lab
from tests.support.doubles import RecordingObserver

TEST_ROOT = Path(os.environ.get("ADVISOR_LAB_TEST_ROOT", "/tmp/advisor-lab-test"))
TEST_CACHE = DEFAULT_ROOT / "cache"


def make_lab(root: Path = TEST_ROOT) -> Lab:
    return Lab(root, cache=TEST_CACHE, progress=lambda line: print(f"[lab] {line}"))


def needs_the_lab(*tools: str) -> None:
    """Skip unless the lab can run here: root, libvirtd, QEMU and unshare, and `tools` besides."""
    if os.geteuid() != 0:
        pytest.skip("the lab needs root (privileged libvirtd in mount namespaces)")
    missing = [p for p in ("libvirtd", "qemu-system-x86_64", *tools, "unshare") if shutil.which(p) is None]
    if missing:
        pytest.skip(f"the lab needs {', '.join(missing)} (scripts/setup.sh installs them)")


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """A running 2-host, 1-guest lab, brought up once per session and taken down at its end."""
    needs_the_lab("prometheus")
    the_lab = make_lab()
    the_lab.down()  # whatever a crashed earlier run left behind
    try:
        status = the_lab.up(hosts=2, guests=1)
        assert status.healthy, status
        yield the_lab
    finally:
        the_lab.down()


def lab_endpoints(lab: Lab, tls_offered: Collection[str] = ()) -> Callable[[str], HostEndpoint]:
    """How the advisor reaches each of the lab's hosts: its daemon on the lab's socket, the memory stream to it
    over loopback, TLS for migration offered by the hosts in `tls_offered`."""

    def endpoint(host_id: str) -> HostEndpoint:
        uri = lab.uri(host_id)
        return HostEndpoint(lambda: LibvirtHypervisor(uri), MigrationTarget(uri, "127.0.0.1", host_id in tls_offered))

    return endpoint


class StartExecutor(Protocol):
    def __call__(self, lab: Lab, observer: ExecutionObserver | None = None, *, tls_offered: Collection[str] = (),
                 **options: Any) -> Executor: ...


@pytest.fixture
def lab_store(tmp_path: Path) -> Iterator[SqliteStore]:
    """The advisor's SQLite store of the test's migrations."""
    store = SqliteStore(tmp_path / "advisor.sqlite3")
    yield store
    store.close()


@pytest.fixture
def lab_executor(lab_store: SqliteStore) -> Iterator[StartExecutor]:
    """Starts executors moving guests between a lab's hosts on `lab_store`, polling every 0.25 s (other Executor
    options as keywords); every one is stopped at the end of the test, before the store is closed."""
    started: list[Executor] = []

    def start(lab: Lab, observer: ExecutionObserver | None = None, *, tls_offered: Collection[str] = (),
              **options: Any) -> Executor:
        executor = Executor(lab_store, lab_endpoints(lab, tls_offered), observer or RecordingObserver(),
                            **{"poll_interval_s": 0.25, **options})
        executor.start()
        started.append(executor)
        return executor

    yield start
    for executor in started:
        executor.stop()
