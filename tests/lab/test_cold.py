"""A real cold migration in the lab, executed by the advisor's executor through libvirt: the guest is shut down
(the lab's busybox guest ignores the power button, so it is forced off at its timeout), defined on the target,
removed from the source and started there; it ends alive on the target, as transient as it was."""

from __future__ import annotations

import libvirt
import pytest

from advisor.domain.migration import Phase
from advisor.domain.model import MigrationInputs, MigrationParameters, Move, Technique
from advisor.lab import Lab
from advisor.physics import cold_cost
from tests.support.doubles import RecordingObserver
from tests.support.lab import StartExecutor

pytestmark = pytest.mark.integration

GUEST = "vm1"
SHUTDOWN_TIMEOUT_MS = 3000.0


def test_a_cold_move_ends_with_the_guest_alive_on_the_target(lab: Lab, lab_executor: StartExecutor) -> None:
    if not lab.status().healthy or not lab.guest_alive(GUEST, within_s=10):
        lab.up(hosts=2, guests=1)
    source = lab.host_of(GUEST)
    assert source is not None
    target = "hv2" if source == "hv1" else "hv1"

    inputs = MigrationInputs(memory_mib=128, dirty_rate_mib_s=0, bandwidth_mib_s=100, max_bandwidth_mib_s=100)
    predicted = cold_cost(inputs, SHUTDOWN_TIMEOUT_MS)
    params = MigrationParameters(Technique.COLD, 100, 300, shutdown_timeout_ms=SHUTDOWN_TIMEOUT_MS)
    observer = RecordingObserver()
    executor = lab_executor(lab, observer)
    try:
        op = executor.submit("rec-cold", Move(GUEST, source, target, params, predicted, ()), actor="test").operation_id
        record = executor.get(op)
        for latest, _, _ in executor.watch(op, timeout_s=120):
            record = latest
    finally:
        executor.stop()
    timeline = " | ".join(e.message for e in record.timeline)
    assert record.phase is Phase.SUCCEEDED, timeline
    assert Phase.COLD in [e.phase for e in record.timeline]
    assert observer.seen == []  # no job statistics: nothing was polled or steered
    assert lab.host_of(GUEST) == target
    assert "forced off: it did not shut down within 3 s" in record.message  # the lab guest ignores the button
    outcome = record.outcome
    assert outcome is not None and outcome.downtime_ms is not None
    assert SHUTDOWN_TIMEOUT_MS <= outcome.downtime_ms <= outcome.total_time_ms
    assert 0 < outcome.transferred_mib < 0.1  # the definition, a few KiB
    with libvirt.open(lab.uri(target)) as conn:
        assert conn.lookupByName(GUEST).isPersistent() == 0  # transient, as the lab made it
    with libvirt.open(lab.uri(source)) as conn:
        assert GUEST not in [d.name() for d in conn.listAllDomains()]  # nothing left behind
    # The guest boots again on the target (9-14 s to its init under the lab's TCG): its console prints anew.
    assert lab.guest_alive(GUEST, within_s=60), lab.guest_console(GUEST)[-500:]
    d, t = predicted.downtime_ms, predicted.total_time_ms
    print(f"cold move {source}->{target}: downtime {outcome.downtime_ms:.0f} ms (predicted {d.median:.0f} "
          f"[{d.low:.0f}-{d.high:.0f}]), total {outcome.total_time_ms:.0f} ms (predicted {t.median:.0f} "
          f"[{t.low:.0f}-{t.high:.0f}]), {outcome.transferred_mib * 1024:.1f} KiB; {timeline}")
