"""Execution on replicas (advisor.execution.forwarding): a replica that does not lead stores an execute queued and
answers as the leader would; the leader's executor takes each queued operation once and runs it to its end."""

from __future__ import annotations

import pytest

from advisor.domain.errors import FailedPrecondition
from advisor.domain.migration import Phase
from advisor.execution.forwarding import ReplicaExecution
from tests.unit.execution.test_executor import FakeClock, make, move, wait_final, world_of


def test_an_execute_at_a_follower_is_queued_and_run_by_the_leader() -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm1": "a"})
    leader, store, observer = make(clock, world)
    leading = [False]
    follower = ReplicaExecution(leader, store, lambda: leading[0], lambda: "replica-1", clock, clock, clock.sleep)

    queued = follower.submit("r1", move("vm1", "a", "b"), actor="alice", operation_id="op1")
    assert (queued.operation_id, queued.phase) == ("op1", Phase.QUEUED)
    assert follower.submit("r1", move("vm1", "a", "b"), actor="bob", operation_id="op2") == queued  # idempotent
    assert follower.get("op1") == queued and follower.migrating_vms() == {"vm1"}
    assert not world.running and not clock.step()  # nothing runs at the follower
    with pytest.raises(FailedPrecondition, match="abort operation op1 at the leader \\(replica-1\\)"):
        follower.abort("op1", "no")

    assert leader.take_queued() == ["op1"]
    assert leader.take_queued() == []  # taken once
    world.release.set()
    done = wait_final(clock, leader, "op1")
    assert done.phase is Phase.SUCCEEDED and world.host_of("vm1") == "b"
    assert [r.operation_id for r in observer.ended] == ["op1"]
    assert leader.take_queued() == [] and follower.migrating_vms() == frozenset()
    watched = list(follower.watch("op1"))
    assert [w.record.phase for w in watched] == [Phase.SUCCEEDED]
    with pytest.raises(FailedPrecondition, match="already ended"):
        follower.abort("op1", "late")

    leading[0] = True  # once it leads, the same replica runs its own
    world.add_guest("vm2", "a")
    mine = follower.submit("r2", move("vm2", "a", "b"), actor="alice", operation_id="op3")
    assert follower.migrating_vms() == {"vm2"} and mine.operation_id == "op3"
