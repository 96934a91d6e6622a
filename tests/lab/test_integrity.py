"""Integrity: known data written into the guest's memory before a move is read back intact inside the guest after
it, for every technique, each migration executed by the advisor's executor (which checks the guest answers on its
new host). A changed digest fails the migration's test.

The guest fills an 8 MiB file of its tmpfs (guest RAM) with random data and hashes it (advisor.lab.integrity);
after the move it hashes the file again. Its writer keeps dirtying other memory meanwhile, so that pre-copy
re-sends pages while the sealed ones must arrive once and intact. Disks: the session lab's guest has none; a guest
with a local disk is sealed on `integrity.DISK` too by tests/lab/test_disks.py.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from advisor.domain.migration import Phase
from advisor.domain.model import MigrationParameters, Move, Technique
from advisor.execution.executor import Executor
from advisor.lab import Lab
from advisor.lab.integrity import MEMORY, seal
from tests.support.lab import StartExecutor
from tests.support.values import COST

pytestmark = pytest.mark.integration

GUEST = "vm1"
SEAL_MIB = 8
WHERE = (MEMORY,)  # the disk's seal: tests/lab/test_disks.py
# Quick moves of a 128 MiB guest: 32 MiB/s, post-copy switched to as soon as QEMU takes it.
PARAMETERS = {
    Technique.PRECOPY: MigrationParameters(Technique.PRECOPY, 32, 300, None, 60_000),
    Technique.PRECOPY_AUTOCONVERGE: MigrationParameters(Technique.PRECOPY_AUTOCONVERGE, 32, 300, None, 60_000),
    Technique.PRECOPY_XBZRLE: MigrationParameters(Technique.PRECOPY_XBZRLE, 32, 300, None, 60_000),
    Technique.PRECOPY_COMPRESS: MigrationParameters(Technique.PRECOPY_COMPRESS, 32, 300, None, 60_000,
                                                    compression_threads=1),
    Technique.POSTCOPY: MigrationParameters(Technique.POSTCOPY, 32, 300, 0.0, 60_000, postcopy_bandwidth_mib_s=32),
}


@pytest.fixture
def executor(lab: Lab, lab_executor: StartExecutor) -> Iterator[Executor]:
    if not lab.status().healthy:
        lab.up(hosts=2, guests=1)
    yield lab_executor(lab)
    lab.set_dirty_rate(GUEST, 0)


def test_data_sealed_in_guest_memory_is_intact_after_a_move_by_every_technique(
        lab: Lab, executor: Executor, caplog: pytest.LogCaptureFixture) -> None:
    lab.set_dirty_rate(GUEST, 4, working_set_mib=16)
    for technique, parameters in PARAMETERS.items():
        source = lab.host_of(GUEST)
        assert source is not None
        target = "hv2" if source == "hv1" else "hv1"
        sealed = {where: seal(lab, GUEST, SEAL_MIB, where) for where in WHERE}
        op = executor.submit(f"integrity-{technique}", Move(GUEST, source, target, parameters, COST, ()),
                             actor="test").operation_id
        record = executor.get(op)
        for latest, _, _ in executor.watch(op, timeout_s=90):
            record = latest
        events = " | ".join(e.message for e in record.timeline)
        hypervisor_said = [getattr(r, "error", "") for r in caplog.records if getattr(r, "error", "")]
        assert record.phase is Phase.SUCCEEDED, f"{technique}: {events} (hypervisor: {hypervisor_said})"
        assert lab.host_of(GUEST) == target
        # the runner's own check of the guest on its new host, named in the outcome
        assert f"guest runs on target {target} (running, its vCPUs ran" in record.message, record.message
        for where, digest in sealed.items():
            assert seal(lab, GUEST, 0, where) == digest, f"{technique}: {where} changed in the move"
