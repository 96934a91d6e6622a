"""Migrations over TLS in the lab: the lab's daemons have migration certificates (advisor.lab.pki), the executor
asks libvirt for TLS with the setting migration_tls = required, and QEMU's own migration parameters show the TLS
credentials while the guest moves; a host without TLS is refused before anything moves. The encrypted migration's
time against a plain one at the same cap is printed beside the cost model's prediction (figures, not asserted:
benchmarks/tls_overhead.py measures them properly)."""

from __future__ import annotations

import json
import threading
from dataclasses import replace

import libvirt
import libvirt_qemu
import pytest

from advisor.config import REPO_MODELS_DIR
from advisor.domain.migration import Phase
from advisor.domain.model import MigrationInputs, MigrationParameters, Technique
from advisor.domain.transport import TlsMode
from advisor.execution.executor import Executor
from advisor.lab import Lab
from advisor.model_serving import load_predictor
from advisor.physics.transport import TLS_THROUGHPUT_FACTOR, encrypted_bandwidth
from tests.lab.test_migrations import GUEST, alive, events, execute, wait_final
from tests.support.lab import StartExecutor

pytestmark = pytest.mark.integration

CAP_MIB_S = 16.0  # slow enough (about 6 s for the guest's ~90 MiB) to read QEMU's parameters while it moves


def tls_executor(lab: Lab, lab_executor: StartExecutor, mode: TlsMode,
                 without_tls: frozenset[str] = frozenset()) -> Executor:
    """An executor under `mode` that knows each host's TLS as the lab reports it (but for `without_tls`)."""
    offers = {h.name for h in lab.status().hosts if h.migration_tls} - without_tls
    return lab_executor(lab, tls_offered=offers, tls=mode)


def tls_creds_while_migrating(lab: Lab, source: str, done: threading.Event) -> set[str]:
    """The `tls-creds` QEMU's migration parameters name on the source, read until `done`."""
    seen: set[str] = set()
    conn = libvirt.open(lab.uri(source))
    try:
        while not done.wait(0.2):
            try:
                reply = libvirt_qemu.qemuMonitorCommand(conn.lookupByName(GUEST),
                                                        '{"execute": "query-migrate-parameters"}', 0)
            except libvirt.libvirtError:
                continue  # gone (migrated) or busy: ask again until done
            seen.add(json.loads(reply)["return"].get("tls-creds", ""))
    finally:
        conn.close()
    return seen


@pytest.fixture
def placed(lab: Lab) -> tuple[str, str]:
    if not lab.status().healthy:
        lab.up(hosts=2, guests=1)
    source = lab.host_of(GUEST)
    assert source is not None
    return source, "hv2" if source == "hv1" else "hv1"


def test_the_lab_hosts_offer_tls_and_an_encrypted_migration_runs(lab: Lab, placed: tuple[str, str],
                                                                 lab_executor: StartExecutor) -> None:
    assert all(h.migration_tls for h in lab.status().hosts), lab.status().hosts
    assert all((lab.root / "pki" / h / name).is_file() for h in ("hv1", "hv2")
               for name in ("ca-cert.pem", "server-cert.pem", "server-key.pem", "client-cert.pem", "client-key.pem"))
    source, target = placed
    lab.set_dirty_rate(GUEST, 0)
    executor = tls_executor(lab, lab_executor, TlsMode.REQUIRED)
    params = MigrationParameters(Technique.PRECOPY, CAP_MIB_S, 300, None, 120_000, tls=True)
    done = threading.Event()
    seen: set[str] = set()
    reader = threading.Thread(target=lambda: seen.update(tls_creds_while_migrating(lab, source, done)))
    reader.start()
    try:
        encrypted = wait_final(executor, execute(executor, "tls", source, target, params))
    finally:
        done.set()
        reader.join()
    assert encrypted.phase is Phase.SUCCEEDED, events(encrypted)
    assert "transport: TLS, both hosts offer it (setting migration_tls = required)" in events(encrypted)
    assert encrypted.parameters.tls
    # libvirt gave QEMU its TLS credentials object for this migration (empty when plain)
    assert any(creds for creds in seen), seen
    assert lab.host_of(GUEST) == target and alive(lab)

    # the same move back in clear, at the same cap: what TLS cost, against what the cost model predicts
    plain_executor = tls_executor(lab, lab_executor, TlsMode.OFF)
    plain = wait_final(plain_executor, execute(plain_executor, "plain", target, source, replace(params, tls=False)))
    assert plain.phase is Phase.SUCCEEDED and "plain TCP (setting migration_tls = off)" in events(plain)
    assert lab.host_of(GUEST) == source and alive(lab)
    assert encrypted.outcome is not None and plain.outcome is not None
    sent, served = plain.outcome.transferred_mib, load_predictor(REPO_MODELS_DIR)
    tls_ms, plain_ms = (served.predict(MigrationInputs(sent, 0.0, bandwidth, CAP_MIB_S, host_profile="lab"),
                                       Technique.PRECOPY).total_time_ms.median
                        for bandwidth in (encrypted_bandwidth(CAP_MIB_S), CAP_MIB_S))
    measured = encrypted.outcome.total_time_ms / plain.outcome.total_time_ms
    print(f"\nTLS vs plain at {CAP_MIB_S:g} MiB/s: {encrypted.outcome.total_time_ms:.0f} vs "
          f"{plain.outcome.total_time_ms:.0f} ms measured (x{measured:.2f}); predicted x{tls_ms / plain_ms:.2f} "
          f"({served.model.name} {served.model.version}, TLS throughput factor {TLS_THROUGHPUT_FACTOR:g})")


def test_required_refuses_a_target_without_tls_before_anything_moves(lab: Lab, placed: tuple[str, str],
                                                                     lab_executor: StartExecutor) -> None:
    source, target = placed
    executor = tls_executor(lab, lab_executor, TlsMode.REQUIRED, without_tls=frozenset({target}))
    record = wait_final(executor, execute(executor, "no-tls", source, target,
                                          MigrationParameters(Technique.PRECOPY, CAP_MIB_S, 300, tls=True)))
    assert record.phase is Phase.FAILED
    assert f"refused: {target} offers no TLS for migration (setting migration_tls = required)" in record.message
    assert lab.host_of(GUEST) == source and alive(lab)
