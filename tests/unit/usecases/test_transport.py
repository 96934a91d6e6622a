"""migration_tls through advice, plans and the check before a move: where a move goes, whether it is encrypted,
what it is priced at and what its reasons say."""

from __future__ import annotations

from dataclasses import replace

import pytest

from advisor.domain.errors import FailedPrecondition
from advisor.domain.model import Objective, PlanGoal, Vm
from advisor.domain.recommendation import Decision
from advisor.domain.transport import TlsMode
from advisor.physics.transport import TLS_THROUGHPUT_FACTOR
from tests.unit.usecases.world import KNOBS, World, hosts, world


def tls_world(mode: TlsMode, with_tls: set[str]) -> World:
    """Hosts a (the VMs' home, busy), b and c (idle): those in `with_tls` offer TLS for migration."""
    w = world(filters=replace(KNOBS.filters, migration_tls=mode))
    w.push([replace(h, migration_tls=h.id in with_tls) for h in hosts("a", "b", "c")],
           [Vm("v1", "a", 4096, 2), Vm("v2", "a", 4096, 2)])
    w.load({"a": 0.9, "b": 0.1, "c": 0.2})
    return w


def test_required_moves_only_to_a_host_with_tls_and_encrypts() -> None:
    w = tls_world(TlsMode.REQUIRED, {"a", "c"})
    move = w.advice.recommend_target("v1", Objective()).moves[0]
    assert move.target_host_id == "c" and move.parameters.tls  # b is idler, but offers no TLS
    assert any("transport: TLS, both hosts offer it" in r for r in move.reasons)
    assert any("migration TLS" in f and h == "b" for f, _, h in move.rejection_counts)
    assert move.inputs is not None and move.inputs.usable_bandwidth_mib_s == pytest.approx(
        move.inputs.max_bandwidth_mib_s * TLS_THROUGHPUT_FACTOR)


def test_required_with_a_source_without_tls_has_no_target_and_says_why() -> None:
    w = tls_world(TlsMode.REQUIRED, {"b", "c"})
    with pytest.raises(FailedPrecondition, match="migration TLS"):
        w.advice.recommend_target("v1", Objective())


def test_preferred_falls_back_to_plain_tcp_and_says_so() -> None:
    w = tls_world(TlsMode.PREFERRED, {"a", "c"})
    move = w.advice.recommend_target("v1", Objective()).moves[0]
    assert move.target_host_id == "b" and not move.parameters.tls
    assert any("plain TCP, unencrypted: b offers no TLS for migration" in r for r in move.reasons)
    assert move.inputs is not None and move.inputs.usable_bandwidth_mib_s == move.inputs.max_bandwidth_mib_s


def test_a_plan_under_required_drains_only_to_hosts_with_tls_and_encrypts_each_move() -> None:
    w = tls_world(TlsMode.REQUIRED, {"a", "c"})
    plan = w.planning.plan_cluster(PlanGoal.DRAIN, "a", 0, Objective())
    assert plan.moves and {m.target_host_id for m in plan.moves} == {"c"}
    assert all(m.parameters.tls and any("transport: TLS" in r for r in m.reasons) for m in plan.moves)
    assert all(m.inputs is not None and "for TLS's overhead" in m.inputs.bandwidth_source for m in plan.moves)


def test_a_target_that_lost_tls_expires_the_move_before_it_starts() -> None:
    w = tls_world(TlsMode.REQUIRED, {"a", "c"})
    rec = w.advice.recommend_target("v1", Objective())
    w.review.decide(rec.id, Decision.APPROVE, "alice", "ok")
    w.push([replace(h, migration_tls=h.id == "a") for h in hosts("a", "b", "c")])
    with pytest.raises(FailedPrecondition, match="target c would reject v1 now: this host offers no TLS for migration"):
        w.migrations.execute(rec.id, "alice")
