"""A failed move on the wire and on the command line: its failure class, and what was not measured left unset
(the API) and shown as `-` (the CLI), never 0."""

from __future__ import annotations

from dataclasses import replace

import pytest

from advisor.adapters.sql.codec import decode_migration, encode
from advisor.api import convert
from advisor.api.v1 import advisor_pb2 as pb
from advisor.cli.render import history_table, render_operation
from advisor.domain.failures import Failure
from advisor.domain.migration import MigrationRecord, MigrationResult, Phase, TimelineEntry
from advisor.domain.model import Interval, MigrationCost, MigrationParameters, ModelRef, Technique

COST = MigrationCost(Technique.PRECOPY, Interval(900, 1000, 1200), Interval(10, 20, 40), Interval(100, 128, 150),
                     True, ModelRef("analytic", "1"))
FAILED = MigrationRecord(
    "op1", "rec", "vm1", "hv1", "hv2", MigrationParameters(Technique.PRECOPY, 100, 300), COST, 0.0, Phase.FAILED,
    (TimelineEntry(0.0, Phase.FAILED, "cannot start: source hv1 cannot be reached (incident 1234abcd; ...)"),),
    MigrationResult(False, error="Connection refused", failure=Failure.SOURCE_UNREACHABLE), 1.0)


def test_a_failed_move_carries_its_class_and_leaves_what_was_not_measured_unset() -> None:
    o = convert.operation_to_pb(FAILED).outcome
    assert o.failure_class == pb.FAILURE_CLASS_SOURCE_UNREACHABLE
    assert not o.HasField("total_time_ms") and not o.HasField("downtime_ms") and not o.HasField("transferred_mib")
    sent = replace(FAILED, outcome=replace(FAILED.outcome, transferred_mib=42.0))  # type: ignore[type-var]
    assert convert.operation_to_pb(sent).outcome.transferred_mib == 42.0


@pytest.mark.parametrize("failure", list(Failure))
def test_every_failure_class_has_its_wire_value_and_is_stored(failure: Failure) -> None:
    record = replace(FAILED, outcome=replace(FAILED.outcome, failure=failure))  # type: ignore[type-var]
    assert convert.operation_to_pb(record).outcome.failure_class != pb.FAILURE_CLASS_UNSPECIFIED
    assert decode_migration(encode(record)) == record


def test_the_command_line_shows_the_class_and_a_dash_for_what_was_not_measured() -> None:
    op = convert.operation_to_pb(FAILED)
    shown = render_operation(op)
    assert "failed (source unreachable)" in shown
    rows = {line.split()[0]: line.split() for line in shown.splitlines() if line.strip()}
    assert rows["total"][-1] == "-" and rows["downtime"][-1] == "-" and rows["data"][-1] == "-"
    assert " 0 " not in shown.replace("  ", " ")
    history = history_table([op])
    assert "failed (source unreachable)" in history and " - " in history


def test_a_succeeded_move_has_no_class() -> None:
    done = replace(FAILED, phase=Phase.SUCCEEDED, outcome=MigrationResult(True, total_time_ms=1000.0,
                                                                          downtime_ms=12.0, transferred_mib=130.0))
    o = convert.operation_to_pb(done).outcome
    assert o.failure_class == pb.FAILURE_CLASS_UNSPECIFIED and o.downtime_ms == 12.0
