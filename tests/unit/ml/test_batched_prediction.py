"""One VM's techniques predicted in one batched call are, bit for bit, what predicting each technique alone gives,
and the compiled trees (advisor.ml.trees) serve what LightGBM's own predictor served, through every wrapper: host
profiles learned, calibrated and not, and intervals adapted to outcomes."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from advisor.domain.migration import MigrationResult
from advisor.domain.model import MigrationInputs, Technique
from advisor.ml import cost
from advisor.ml.adaptive_intervals import AdaptiveIntervals, AdaptivePredictor
from advisor.ml.predictor import CostPredictor
from advisor.ml.profile_serving import ProfileServingPredictor
from advisor.ml.profile_store import ProfileStore
from advisor.ml.profiles import calibrate
from tests.support import REPO
from tests.unit.ml.test_profiles import rig

PROFILES = ("", "snu", "lab", "rig", "never-calibrated")  # "rig" is calibrated below


def varied_inputs(n: int, seed: int = 5) -> list[MigrationInputs]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        memory = rng.choice([256.0, 1024.0, 4096.0, 32768.0])
        bandwidth, cap = rng.choice([12.0, 117.0, 1250.0]), rng.choice([32.0, 1e4])
        known = rng.random() > 0.25  # else unknown: taken as the usable bandwidth, as serving takes it
        out.append(MigrationInputs(
            memory_mib=memory * rng.uniform(0.2, 1.0),
            dirty_rate_mib_s=rng.choice([0.0, 0.3, 4.0, 40.0, 400.0]) if known else min(bandwidth, cap),
            bandwidth_mib_s=bandwidth, max_bandwidth_mib_s=cap, max_downtime_ms=rng.choice([20.0, 300.0, 2000.0]),
            dirty_rate_source="sample" if known else "dirty rate unknown: no sample", dirty_rate_known=known,
            burst_dirty_rate_mib_s=rng.choice([None, 90.0]), memory_configured_mib=rng.choice([None, memory]),
            memory_source=rng.choice(["in use", "configured"]), working_set_mib=rng.choice([None, 3.0, 300.0]),
            nonzero_memory_mib=rng.choice([None, memory * 0.1]), deadline_ms=rng.choice([0.0, 15_000.0, 600_000.0]),
            host_profile=rng.choice(PROFILES)))
    return out


def served(models: Path, profiles: ProfileStore, intervals: AdaptiveIntervals) -> CostPredictor:
    return AdaptivePredictor(ProfileServingPredictor(cost.load_cost_predictor(models), profiles.get), intervals)


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory) -> tuple[ProfileStore, AdaptiveIntervals]:
    profiles = ProfileStore(tmp_path_factory.mktemp("profiles"))
    profiles.save(calibrate("rig", *rig(12)), "test", {})
    intervals = AdaptiveIntervals()
    model = served(REPO / "models" / "cost", profiles, intervals)
    for inputs in varied_inputs(12, seed=9):  # some cells' intervals widened or narrowed by outcomes
        predicted = model.predict(inputs, Technique.PRECOPY)
        intervals.observe(inputs, predicted, MigrationResult(True, total_time_ms=predicted.total_time_ms.median * 3,
                                                             downtime_ms=predicted.downtime_ms.median,
                                                             transferred_mib=predicted.transferred_mib.median))
    assert intervals.any_adapted()
    return profiles, intervals


def test_one_batched_call_equals_each_technique_alone(setting: tuple[ProfileStore, AdaptiveIntervals]) -> None:
    model = served(REPO / "models" / "cost", *setting)
    for inputs in varied_inputs(120):
        at_burst = replace(inputs, dirty_rate_mib_s=inputs.burst_dirty_rate_mib_s or inputs.dirty_rate_mib_s)
        rows = [(i, t) for i in (inputs, at_burst) for t in Technique if t.is_live]  # as CostEstimator asks: one call
        assert model.predict_many(rows) == [model.predict(i, t) for i, t in rows], inputs


def test_compiled_trees_serve_what_lightgbm_served(setting: tuple[ProfileStore, AdaptiveIntervals],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    compiled = served(REPO / "models" / "cost", *setting)

    class LightGBMTrees:  # the loader as it was: LightGBM's own predictor
        @staticmethod
        def from_file(path: Path) -> Any:
            return lgb.Booster(model_file=str(path))

    monkeypatch.setattr(cost, "Forest", LightGBMTrees)
    previous = served(REPO / "models" / "cost", *setting)
    assert isinstance(previous.inner.inner._boosters["total_time_ms"], lgb.Booster)  # type: ignore[attr-defined]
    rows = [(i, t) for i in varied_inputs(150, seed=11) for t in Technique if t.is_live]
    assert compiled.predict_many(rows) == previous.predict_many(rows)
    learned = [r for r in rows if r[0].host_profile in ("", "snu", "lab")]
    new, old = compiled.predict_arrays(learned), previous.predict_arrays(learned)  # type: ignore[attr-defined]
    for quantity in ("total_time_ms", "downtime_ms", "transferred_mib", "converge_probability"):
        assert np.array_equal(getattr(new, quantity), getattr(old, quantity), equal_nan=True), quantity
