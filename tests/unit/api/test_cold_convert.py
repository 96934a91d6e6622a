"""Cold migration on the wire: its technique, its phase and its shutdown timeout, as the CLI and the page name them."""

from __future__ import annotations

from advisor.api import convert
from advisor.api.v1 import advisor_pb2 as pb
from advisor.cli.render import technique_name
from advisor.domain.migration import MigrationRecord, Phase, TimelineEntry
from advisor.domain.model import Interval, MigrationCost, MigrationParameters, ModelRef, Technique


def test_every_technique_and_phase_has_its_wire_value() -> None:
    for technique in Technique:
        assert convert.technique_from_pb(convert.technique_to_pb(technique), "t") is technique
    assert convert.technique_to_pb(Technique.COLD) == pb.TECHNIQUE_COLD
    assert technique_name(pb.TECHNIQUE_COLD) == "cold"


def test_a_cold_operation_shows_its_phase_and_timeout() -> None:
    cost = MigrationCost(Technique.COLD, Interval(1, 2, 3), Interval(1, 2, 3), Interval.exact(0.002), True,
                         ModelRef("cold-steps", "1.0.0"))
    params = MigrationParameters(Technique.COLD, 100, 300, shutdown_timeout_ms=60_000)
    record = MigrationRecord("op", "rec", "vm1", "a", "b", params, cost, 0.0, Phase.COLD,
                             (TimelineEntry(0.0, Phase.COLD, "moving vm1 cold"),))
    msg = convert.operation_to_pb(record)
    assert msg.phase == pb.MIGRATION_PHASE_COLD
    assert msg.parameters.technique == pb.TECHNIQUE_COLD and msg.parameters.shutdown_timeout_ms == 60_000
    assert convert.progress_to_pb(record, None).phase == pb.MIGRATION_PHASE_COLD
