"""Local disks in the lab: a guest with a raw disk of its own on its host (`advisor lab up --disk-mib`), read by
the advisor from libvirt as a local disk, moved by every live technique with libvirt's block migration (an NBD
mirror, the target's volume created first by the adapter) and cold (copied while off), each move executed by the
advisor's executor; data sealed on the disk (and, until the cold move reboots the guest, in memory) before the
first move is read back intact inside the guest after each, the disk read from the target's copy (the guest drops
its page cache first). Each move carries the whole of both again (QEMU starts a migration with every page marked
dirty; the mirror copies the whole disk), so one seal checked after every move proves what a fresh one per move
would, without writing and hashing 16 MiB of random data again under TCG before each.

This is also the lab's integrity test of memory (advisor.lab.integrity): 8 MiB of random data in the guest's
tmpfs (guest RAM), sealed before the moves and hashed again inside the guest after the move by each technique,
while its writer dirties other memory, so that pre-copy re-sends pages while the sealed ones must arrive once and
intact; and the runner's own check of the guest on its new host is named in each outcome. (The memory moves by
the same QEMU migration stream with or without the disk's mirror beside it, so a second test of the same seals on
a guest without a disk, tests/lab/test_integrity.py, was removed as a duplicate.)

The guest rewrites part of a file on its disk meanwhile (the disk writer), so the mirror copies writes again.
First, before anything moves, the same writer's rate is read back by the advisor's telemetry from libvirt's block
statistics (`block.N.wr.bytes`) over time: the guest's file system adds its own journal writes, never fewer.

This module brings up a lab of its own (2 hosts, 1 guest with a disk, no Prometheus) beside the session's, under
$ADVISOR_LAB_TEST_ROOT-disks, and takes it down at its end.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from advisor.adapters.libvirt import LibvirtHypervisor
from advisor.domain.migration import MigrationRecord, Phase
from advisor.domain.model import (
    MigrationInputs,
    MigrationParameters,
    Move,
    Technique,
)
from advisor.execution.executor import Executor
from advisor.lab import Lab, procs
from advisor.lab.disks import set_disk_writer
from advisor.lab.integrity import DISK, MEMORY, seal
from advisor.ml.predictor import AnalyticPredictor, predict_with_disks
from advisor.physics import cold_cost
from advisor.telemetry.hypervisors import GuestStatsReader, HostConnection, read_inventory
from tests.support.lab import TEST_CACHE, TEST_ROOT, StartExecutor, needs_the_lab
from tests.support.values import COST

pytestmark = pytest.mark.integration

GUEST = "vm1"
DISK_MIB = 64
SEAL_MIB = 8
BANDWIDTH_MIB_S = 64
LIVE = {
    Technique.PRECOPY: MigrationParameters(Technique.PRECOPY, BANDWIDTH_MIB_S, 300, None, 120_000),
    Technique.PRECOPY_AUTOCONVERGE: MigrationParameters(Technique.PRECOPY_AUTOCONVERGE, BANDWIDTH_MIB_S, 300, None,
                                                        120_000),
    Technique.PRECOPY_XBZRLE: MigrationParameters(Technique.PRECOPY_XBZRLE, BANDWIDTH_MIB_S, 300, None, 120_000),
    Technique.PRECOPY_COMPRESS: MigrationParameters(Technique.PRECOPY_COMPRESS, BANDWIDTH_MIB_S, 300, None, 120_000,
                                                    compression_threads=1),
    Technique.POSTCOPY: MigrationParameters(Technique.POSTCOPY, BANDWIDTH_MIB_S, 300, 0.0, 120_000,
                                            postcopy_bandwidth_mib_s=BANDWIDTH_MIB_S),
}
COLD = MigrationParameters(Technique.COLD, BANDWIDTH_MIB_S, 300, shutdown_timeout_ms=3000.0, migrate_disks=("vda",))
WRITE_KIB_S = 1024  # the disk writer's rate while its rate is read
WINDOW_S = 6.0


@pytest.fixture(scope="module")
def disk_lab() -> Iterator[Lab]:
    needs_the_lab()
    lab = Lab(Path(f"{TEST_ROOT}-disks"), cache=TEST_CACHE, with_prometheus=False,
              progress=lambda line: print(f"[lab] {line}"))
    lab.down()
    try:
        status = lab.up(hosts=2, guests=1, disk_mib=DISK_MIB)
        assert status.healthy, status
        yield lab
    finally:
        lab.down()


def test_the_advisor_reads_a_guest_disk_write_rate_from_libvirt(disk_lab: Lab) -> None:
    host = disk_lab.host_of(GUEST)
    assert host is not None
    hosts = [HostConnection(host, disk_lab.uri(host))]
    vm = next(v for v in read_inventory(hosts, LibvirtHypervisor).vms if v.id == GUEST)
    local = {GUEST: frozenset(d.target for d in vm.local_disks)}
    assert local[GUEST] == {"vda"}
    set_disk_writer(disk_lab, GUEST, 4, WRITE_KIB_S)  # 4 MiB of a file rewritten at 1 MiB/s, synced
    reader = GuestStatsReader()
    try:
        time.sleep(2.0)  # the writer under way
        (first,) = [s for s in reader.read(hosts, LibvirtHypervisor, local) if s.vm_id == GUEST]
        time.sleep(WINDOW_S)
        (second,) = [s for s in reader.read(hosts, LibvirtHypervisor, local) if s.vm_id == GUEST]
    finally:
        set_disk_writer(disk_lab, GUEST, 1, 0)  # stopped
    assert first.disk_write_rate_mib_s is None  # one reading of a counter: no rate yet
    rate = second.disk_write_rate_mib_s
    print(f"disk writer at {WRITE_KIB_S / 1024:.2f} MiB/s; libvirt's block statistics read {rate} MiB/s")
    assert rate is not None and 0.5 * WRITE_KIB_S / 1024 <= rate <= 4 * WRITE_KIB_S / 1024


def move(lab: Lab, executor: Executor, parameters: MigrationParameters, name: str,
         caplog: pytest.LogCaptureFixture) -> tuple[MigrationRecord, str]:
    source = lab.host_of(GUEST)
    assert source is not None
    target = "hv2" if source == "hv1" else "hv1"
    op = executor.submit(name, Move(GUEST, source, target, parameters, COST, ()), actor="test").operation_id
    record = executor.get(op)
    for latest, _, _ in executor.watch(op, timeout_s=240):
        record = latest
    events = " | ".join(e.message for e in record.timeline)
    hypervisor_said = [getattr(r, "error", "") for r in caplog.records if getattr(r, "error", "")]
    assert record.phase is Phase.SUCCEEDED, f"{parameters.technique}: {events} (hypervisor: {hypervisor_said})"
    assert lab.host_of(GUEST) == target
    return record, target


def test_a_guest_local_disk_moves_intact_with_every_technique(disk_lab: Lab, lab_executor: StartExecutor,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    lab = disk_lab
    executor = lab_executor(lab)
    hosts = [HostConnection(h, lab.uri(h)) for h in ("hv1", "hv2")]
    change = read_inventory(hosts, LibvirtHypervisor)
    vm = next(v for v in change.vms if v.id == GUEST)
    assert [(d.target, d.size_mib, d.shared) for d in vm.disks] == [("vda", DISK_MIB, False)]
    assert 0 < vm.disks[0].used_mib <= DISK_MIB
    assert all(h.local_disk_free_mib is not None and h.local_disk_free_mib > DISK_MIB for h in change.hosts)
    set_disk_writer(lab, GUEST, 8, 256)  # 8 MiB of a file rewritten at 256 KiB/s
    lab.set_dirty_rate(GUEST, 2, working_set_mib=8)
    figures = []
    sealed = {where: seal(lab, GUEST, SEAL_MIB, where) for where in (MEMORY, DISK)}
    for technique, parameters in LIVE.items():
        block = MigrationParameters(**{**parameters.__dict__, "migrate_disks": ("vda",)})
        used = next(v for v in read_inventory(hosts, LibvirtHypervisor).vms if v.id == GUEST).disks[0].used_mib
        record, target = move(lab, executor, block, f"disks-{technique}", caplog)
        # the runner's own check of the guest on its new host, named in the outcome
        assert f"guest runs on target {target} (running, its vCPUs ran" in record.message, record.message
        for where, digest in sealed.items():
            assert seal(lab, GUEST, 0, where) == digest, f"{technique}: {where} changed in the move"
        on_target = lab.root / "hosts" / target / "lib" / "images" / f"{GUEST}.img"
        assert on_target.exists(), f"{technique}: no disk on {target}"
        inputs = MigrationInputs(memory_mib=128, dirty_rate_mib_s=2, bandwidth_mib_s=BANDWIDTH_MIB_S,
                                 max_bandwidth_mib_s=BANDWIDTH_MIB_S, local_disk_used_mib=used,
                                 local_disk_size_mib=DISK_MIB, disk_write_rate_mib_s=0.25, working_set_mib=8)
        predicted = predict_with_disks(AnalyticPredictor(), [(inputs, technique)])[0]
        outcome = record.outcome
        assert outcome is not None
        figures.append(f"{technique}: total {outcome.total_time_ms:.0f} ms (predicted "
                       f"{predicted.total_time_ms.median:.0f}), downtime {outcome.downtime_ms} ms (predicted "
                       f"{predicted.downtime_ms.median:.0f}), disk {used:.1f} MiB in use")
    # cold: the disk is copied while the guest is off; the guest boots again on the target and mounts it
    used = next(v for v in read_inventory(hosts, LibvirtHypervisor).vms if v.id == GUEST).disks[0].used_mib
    record, target = move(lab, executor, COLD, "disks-cold", caplog)
    assert lab.guest_alive(GUEST, within_s=60), lab.guest_console(GUEST)[-500:]
    procs.wait_for("the guest reading commands", lambda: "GUEST-READY" in lab.guest_console(GUEST), 60, 0.5)
    assert "GUEST-DISK mounted=1" in lab.guest_console(GUEST)
    assert seal(lab, GUEST, 0, DISK) == sealed[DISK], "cold: the disk changed in the move"
    outcome = record.outcome
    # the disk's data (the seal at least) and the definition, never more than the space in use: the holes are
    # passed on as holes (a sparse stream; zeroed ranges the mirror left allocated count as holes too)
    assert outcome is not None and SEAL_MIB <= outcome.transferred_mib <= used + 1
    predicted = cold_cost(MigrationInputs(128, 0, BANDWIDTH_MIB_S, BANDWIDTH_MIB_S), COLD.shutdown_timeout_ms,
                          local_disk_mib=used)
    figures.append(f"cold: downtime {outcome.downtime_ms} ms (predicted {predicted.downtime_ms.median:.0f}), "
                   f"{outcome.transferred_mib:.1f} MiB copied, disk {used:.1f} MiB in use")
    print("\n".join(figures))
