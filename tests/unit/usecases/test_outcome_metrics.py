"""What an ended migration exports: the downtime histogram per technique (in seconds, where measured), and the
running prediction error labelled by the model version that predicted it and the hosts' profile."""

from __future__ import annotations

from dataclasses import replace

from prometheus_client import CollectorRegistry

from advisor.adapters.memory import ManualClock, MemoryStore
from advisor.domain.migration import Phase
from advisor.domain.model import ModelRef
from advisor.metrics import AdvisorMetrics
from advisor.ml.calibration import RunningErrors
from advisor.usecases.inventory import Inventory
from advisor.usecases.migrations import MigrationOutcomes
from tests.unit.usecases.test_profile_learning import record


def handler() -> tuple[MigrationOutcomes, AdvisorMetrics]:
    store, metrics = MemoryStore(), AdvisorMetrics(CollectorRegistry())
    return MigrationOutcomes(store, Inventory(store), metrics, ManualClock(), RunningErrors(),
                             on_ended=lambda r: None), metrics


def test_downtime_is_a_histogram_in_seconds_per_technique_and_unmeasured_is_not_observed() -> None:
    outcomes, metrics = handler()
    outcomes.finished(record("rig", Phase.SUCCEEDED))  # 40 ms
    unmeasured = record("rig", Phase.SUCCEEDED, op="op2")
    no_downtime = replace(unmeasured.outcome, downtime_ms=None)  # type: ignore[type-var]
    outcomes.finished(replace(unmeasured, outcome=no_downtime))
    value = metrics.registry.get_sample_value
    assert value("advisor_migration_downtime_seconds_count", {"technique": "precopy"}) == 1.0
    assert value("advisor_migration_downtime_seconds_sum", {"technique": "precopy"}) == 0.04
    assert value("advisor_migration_downtime_seconds_bucket", {"technique": "precopy", "le": "0.05"}) == 1.0


def test_prediction_errors_are_labelled_by_model_version_and_host_profile() -> None:
    outcomes, metrics = handler()
    first = record("rig", Phase.SUCCEEDED)
    outcomes.finished(first)
    promoted = replace(first.predicted, model=ModelRef("lightgbm-cost", "3.1"))
    outcomes.finished(replace(first, operation_id="op2", predicted=promoted))
    unlabelled = replace(first.inputs, host_profile="")  # type: ignore[type-var]
    outcomes.finished(replace(first, operation_id="op3", inputs=unlabelled))
    value = metrics.registry.get_sample_value
    labels = {"technique": "precopy", "quantity": "total_time_ms"}
    analytic = first.predicted.model
    for model, version, profile in ((analytic.name, analytic.version, "rig"), ("lightgbm-cost", "3.1", "rig"),
                                    (analytic.name, analytic.version, "")):
        got = value("advisor_prediction_error_ratio", {**labels, "model": model, "model_version": version,
                                                       "profile": profile})
        assert got is not None and got >= 0, (model, version, profile)
