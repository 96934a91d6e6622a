"""Evacuation in the lab: the advisor reads both hosts (which answer, and the guest's definition), the guest's
host then dies (its libvirtd and QEMU killed), and the plan to evacuate it, approved and run through the advisor's
use cases and executor, restarts the guest on the other host from its definition, where it boots and runs.

The lab's guest has no disk: its kernel and initramfs are files every host of the lab reads, so its storage is
shared in the sense that matters here."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from advisor.adapters.libvirt import LibvirtHypervisor
from advisor.cli.demo import lab_uri_pattern
from advisor.config import Settings
from advisor.domain.errors import FailedPrecondition
from advisor.domain.migration import MigrationRecord, Phase
from advisor.domain.model import MoveKind, Objective, PlanGoal
from advisor.domain.recommendation import Decision
from advisor.lab import Lab
from advisor.telemetry.hypervisors import HostConnection, read_inventory
from tests.support import local_advisor

pytestmark = pytest.mark.integration

GUEST = "vm1"
DOWN_AFTER_S = 2.0


def test_the_guest_of_a_dead_host_is_restarted_on_another(lab: Lab, tmp_path: Path) -> None:
    if not lab.status().healthy or not lab.guest_alive(GUEST, within_s=10):
        lab.up(hosts=2, guests=1)
    source = lab.host_of(GUEST)
    assert source is not None
    target = "hv2" if source == "hv1" else "hv1"
    hosts = [HostConnection(h.name, h.uri, migration_address="127.0.0.1") for h in lab.status().hosts]
    patterns = (*Settings().hypervisor_uri_patterns, lab_uri_pattern(lab))
    try:
        # the collector is built as `advisor serve` builds it, and run here rather than on its schedule
        with local_advisor(tmp_path, hypervisor_uri_patterns=patterns, dirty_rate_interval_s=3600,
                           evacuate_host_down_after_s=DOWN_AFTER_S) as app:
            app.usecases.ingestion.push_inventory(read_inventory(hosts, LibvirtHypervisor))
            (collector,) = [c for c in app.leader_tasks if c.name == "dirty-rate"]
            collector.run_once()  # both hypervisors answer; the guest's definition is read and kept
            planning, review = app.usecases.planning, app.usecases.review
            with pytest.raises(FailedPrecondition, match=f"{source} is up .*drain it"):
                planning.plan_cluster(PlanGoal.EVACUATE, source, 0, Objective())

            killed = lab.kill_host(source)
            died = time.monotonic()
            assert len(killed) >= 2 and lab.host_of(GUEST) is None  # its libvirtd and the guest's QEMU
            time.sleep(DOWN_AFTER_S + 0.5)
            collector.run_once()  # the dead host's hypervisor does not answer
            plan = planning.plan_cluster(PlanGoal.EVACUATE, source, 0, Objective())
            assert [(m.vm_id, m.target_host_id, m.parameters.kind) for m in plan.moves] == [
                (GUEST, target, MoveKind.RESTART)], plan.summary
            assert plan.summary.startswith(f"{source} is down: its hypervisor has not answered"), plan.summary
            approved = review.decide(plan.id, Decision.APPROVE, "sre", "host died")
            app.usecases.migrations.run(approved.id, "sre")
            operation = review.get(plan.id).status(0).operation_id
            record: MigrationRecord | None = None
            for seen, _, _ in app.executor.watch(operation, timeout_s=120):
                record = seen
            restarted = time.monotonic() - died
    finally:
        lab.up(hosts=2, guests=1)  # the dead host back, empty (the guest runs on the other)
    assert record is not None
    timeline = " | ".join(e.message for e in record.timeline)
    assert record.phase is Phase.SUCCEEDED, timeline
    assert Phase.RESTARTING in [e.phase for e in record.timeline]
    assert record.outcome is not None and record.outcome.downtime_ms is None
    assert lab.host_of(GUEST) == target
    # It boots again on its new host (under the lab's TCG, 10-20 s to its init): its console prints anew.
    assert lab.guest_alive(GUEST, within_s=90), lab.guest_console(GUEST)[-500:]
    print(f"evacuated {source}: {GUEST} restarted on {target} in {record.outcome.total_time_ms:.0f} ms (define, "
          f"start, check), {restarted:.1f} s after its host was killed; {timeline}")
