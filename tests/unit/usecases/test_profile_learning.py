"""Every completed migration on a profile the learned model does not know updates that profile online, from its
first migration on: the outcome handler calls its port, the store adapter writes the next version and keeps the
newest few."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from prometheus_client import CollectorRegistry

from advisor.adapters.memory import ManualClock, MemoryStore
from advisor.domain.migration import MigrationRecord, MigrationResult, Phase
from advisor.domain.model import MigrationInputs, MigrationParameters, Technique
from advisor.features.inputs import InputTable
from advisor.metrics import AdvisorMetrics
from advisor.ml.calibration import RunningErrors
from advisor.ml.predictor import AnalyticPredictor
from advisor.ml.profile_store import OnlineProfiles, ProfileStore
from advisor.ml.profiles import PRIOR, RESIDUALS_KEPT, physics, uncalibrated
from advisor.physics import cold_cost
from advisor.usecases.inventory import Inventory
from advisor.usecases.migrations import MigrationOutcomes


class Learned:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Technique, float]] = []

    def learn(self, inputs: MigrationInputs, technique: Technique, outcome: MigrationResult) -> None:
        self.seen.append((inputs.host_profile, technique, outcome.total_time_ms))


def record(profile: str, phase: Phase, op: str = "op1", time_ms: float = 9000.0) -> MigrationRecord:
    inputs = MigrationInputs(100, 2, 1250, 32, 300, memory_configured_mib=256, host_profile=profile)
    predicted = AnalyticPredictor().predict(inputs, Technique.PRECOPY)
    outcome = MigrationResult(phase is Phase.SUCCEEDED, total_time_ms=time_ms, downtime_ms=40.0,
                              transferred_mib=150.0)
    return MigrationRecord(op, "r1", "vm1", "a", "b", MigrationParameters(Technique.PRECOPY, 32, 300), predicted,
                           0.0, phase=phase, outcome=outcome, inputs=inputs, finished_at_s=1.0)


def outcomes(learning: object) -> MigrationOutcomes:
    store = MemoryStore()
    return MigrationOutcomes(store, Inventory(store), AdvisorMetrics(CollectorRegistry()), ManualClock(),
                             RunningErrors(), on_ended=lambda r: None, profiles=learning)  # type: ignore[arg-type]


def test_completed_migrations_are_learned_aborted_ones_are_not() -> None:
    learned = Learned()
    handler = outcomes(learned)
    handler.finished(record("rig", Phase.SUCCEEDED))
    handler.finished(record("rig", Phase.ABORTED, op="op2"))
    assert learned.seen == [("rig", Technique.PRECOPY, 9000.0)]


def test_a_cold_move_is_recorded_but_never_learned_as_a_migration_of_memory() -> None:
    learned = Learned()
    handler = outcomes(learned)
    cold = record("rig", Phase.SUCCEEDED)
    cold = replace(cold, parameters=MigrationParameters(Technique.COLD, 32, 300, shutdown_timeout_ms=60_000),
                   predicted=cold_cost(cold.inputs, 60_000))  # type: ignore[arg-type]
    handler.finished(cold)
    assert learned.seen == []
    assert handler.errors.summary()  # its running error is kept all the same (per technique: cold's own)


def test_a_new_profile_is_learnt_from_its_first_migration_on(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path)
    handler = outcomes(OnlineProfiles(store))
    assert store.get("rig") is None  # never calibrated: served as uncalibrated
    handler.finished(record("rig", Phase.SUCCEEDED, op="op1"))
    first = store.get("rig")
    assert first is not None and (first.version, first.migrations) == ("1.0.0", 1)
    handler.finished(record("rig", Phase.SUCCEEDED, op="op2"))
    handler.finished(record("lab", Phase.SUCCEEDED, op="op3"))  # the learned model's: left to retraining
    second = store.get("rig")
    assert second is not None and (second.version, second.migrations) == ("1.1.0", 2)
    # 9 s where the physics says about 3 s: the profile moves toward a slower host, shrunk while it has few
    table = InputTable.from_rows([(record("rig", Phase.SUCCEEDED).inputs, Technique.PRECOPY)])  # type: ignore[list-item]
    before, after = (float(physics(table, p).total_time_ms[0]) for p in (PRIOR, second.parameters))
    assert before < after < 9000.0
    assert store.names() == ["rig"]


def test_labels_cannot_grow_the_store_beyond_its_bound(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path)
    learning = OnlineProfiles(store)
    learning.MAX_PROFILES = 2
    handler = outcomes(learning)
    for k, name in enumerate(("rig-a", "rig-b", "rig-c", "rig-a")):
        handler.finished(record(name, Phase.SUCCEEDED, op=f"op{k}"))
    assert store.names() == ["rig-a", "rig-b"]  # rig-c stays uncalibrated; the known ones still learn
    learnt = store.get("rig-a")
    assert learnt is not None and learnt.migrations == 2


def test_online_updates_keep_the_newest_versions_and_recent_residuals(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path)
    store.save(uncalibrated("rig"), "advisor profiles calibrate", {})
    learning = OnlineProfiles(store)
    learning.KEEP_VERSIONS = 3
    handler = outcomes(learning)
    for k in range(6):
        handler.finished(record("rig", Phase.SUCCEEDED, op=f"op{k}"))
    kept = sorted(p.name for p in (tmp_path / "rig").iterdir() if p.is_dir())
    assert kept == ["1.4.0", "1.5.0", "1.6.0"]
    latest = store.get("rig")
    assert latest is not None and latest.version == "1.6.0" and latest.migrations == 6
    assert all(len(v) <= RESIDUALS_KEPT for per in latest.residuals.values() for v in per.values())


def test_a_profile_that_cannot_learn_does_not_stop_the_lifecycle(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    ended: list[str] = []
    store = MemoryStore()
    handler = MigrationOutcomes(store, Inventory(store), AdvisorMetrics(CollectorRegistry()), ManualClock(),
                                RunningErrors(), on_ended=lambda r: ended.append(r.operation_id),
                                profiles=OnlineProfiles(ProfileStore(tmp_path / "file")))
    handler.finished(record("rig", Phase.SUCCEEDED))
    assert ended == ["op1"]
