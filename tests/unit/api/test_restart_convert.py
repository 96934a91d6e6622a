"""A restart's move in the API: its predicted cost is its steps' total and bytes; it has no technique and its
downtime is unknown (it began when the host died), so both stay unset; a migration's cost is sent whole."""

from __future__ import annotations

from advisor.api import convert
from advisor.api.v1 import advisor_pb2 as pb
from advisor.domain.evacuation import RESTART_PARAMETERS
from advisor.domain.model import MigrationInputs, MigrationParameters, Move, Technique
from advisor.physics import predict_analytic
from advisor.physics.cold import restart_cost


def test_a_restart_sends_its_total_and_leaves_technique_and_downtime_unset() -> None:
    msg = convert.move_to_pb(Move("vm", "dead", "b", RESTART_PARAMETERS, restart_cost(), ()))
    assert msg.parameters.kind == pb.MOVE_KIND_RESTART
    c = msg.predicted_cost
    assert msg.HasField("predicted_cost") and c.total_time_ms.median == restart_cost().total_time_ms.median
    assert not c.HasField("downtime_ms") and c.technique == pb.TECHNIQUE_UNSPECIFIED
    assert c.model.name == "restart-steps" and c.converges


def test_a_migration_sends_its_whole_cost() -> None:
    cost = predict_analytic(MigrationInputs(1024.0, 1.0, 100.0, 100.0), Technique.PRECOPY)
    msg = convert.move_to_pb(Move("vm", "a", "b", MigrationParameters(Technique.PRECOPY, 100.0, 300.0), cost, ()))
    assert msg.predicted_cost.HasField("downtime_ms") and msg.predicted_cost.technique == pb.TECHNIQUE_PRECOPY
