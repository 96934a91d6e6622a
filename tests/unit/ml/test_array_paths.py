"""The array paths of plans give, bit for bit, what the rows and cost objects they replaced gave: candidates ranked
from one InputTable as from a MigrationInputs per row, a table refused as its first bad row is, and a priced batch
(CostEstimator.priced_many) whose arrays and costs are each row's cost as one row's prediction makes it."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import fields, replace
from typing import Any

import numpy as np
import pytest

from advisor.domain.model import MigrationCost, MigrationInputs, ModelRef, Technique
from advisor.features.inputs import InputTable
from advisor.features.samples import RecentSamples
from advisor.ml.adaptive_intervals import AdaptiveIntervals
from advisor.ml.move_costs import LearnedMoveCosts
from advisor.ml.predictor import CostPredictor, cost_rows, predict_with_disks, validate_table, widen_for_burst
from advisor.ml.profile_store import ProfileStore
from advisor.physics import QEMU_OWN_RESIDENT_MIB, cold_cost, validate
from advisor.planning.engine import TECHNIQUES, CostEstimates, CostRequest
from advisor.usecases.estimates import CostEstimator
from tests.support import REPO
from tests.unit.ml.test_batched_prediction import served, setting, varied_inputs

__all__ = ["setting"]  # the fixture, shared with test_batched_prediction

MODELS = REPO / "models" / "cost"


@pytest.fixture(scope="module", params=["adapted intervals", "the model's intervals"])
def model(request: pytest.FixtureRequest, setting: tuple[ProfileStore, AdaptiveIntervals]) -> CostPredictor:
    profiles, intervals = setting
    return served(MODELS, profiles, intervals if request.param == "adapted intervals" else AdaptiveIntervals())


class RowsOnly:
    """A predictor offering only the rows paths (as every predictor did before the table path)."""

    def __init__(self, inner: CostPredictor) -> None:
        self.inner = inner

    @property
    def model(self) -> ModelRef:
        return self.inner.model

    def predict(self, inputs: MigrationInputs, technique: Technique) -> MigrationCost:
        return self.inner.predict(inputs, technique)

    def predict_many(self, rows: Sequence[tuple[MigrationInputs, Technique]]) -> list[MigrationCost]:
        return self.inner.predict_many(rows)

    def predict_arrays(self, rows: Sequence[tuple[MigrationInputs, Technique]]) -> Any:
        return getattr(self.inner, "predict_arrays")(rows)  # noqa: B009 - not in the protocol


def candidates(n: int, seed: int, *, disks: bool) -> CostRequest:
    rng = np.random.default_rng(seed)
    configured = rng.choice([1024.0, 4096.0, 32768.0], n)
    request = CostRequest(
        vm=np.arange(n), target=np.zeros(n, dtype=np.int64),
        memory_mib=np.where(rng.random(n) < 0.3, configured, configured * rng.uniform(0.05, 1.0, n)),
        dirty_rate_mib_s=rng.choice([0.0, 0.4, 40.0, 400.0], n), bandwidth_mib_s=rng.choice([12.0, 117.0, 1250.0], n),
        postcopy_allowed=rng.random(n) < 0.8, max_downtime_ms=float(rng.choice([20.0, 300.0])),
        deadline_ms=float(rng.choice([0.0, 60_000.0])), memory_configured_mib=configured,
        dirty_rate_known=rng.random(n) < 0.8,
        resident_memory_mib=np.where(rng.random(n) < 0.5, configured * rng.uniform(0.05, 1.2, n), np.nan),
        working_set_mib=np.where(rng.random(n) < 0.5, configured * rng.uniform(0.0, 0.5, n), np.nan),
        dirty_at_floor=rng.random(n) < 0.1,
        load_per_cpu=np.where(rng.random(n) < 0.5, rng.uniform(0.0, 3.0, n), np.nan))
    if not disks:
        return request
    used = np.where(rng.random(n) < 0.4, rng.uniform(100.0, 20_000.0, n), 0.0)
    return replace(request, disk_used_mib=used, disk_size_mib=used * 2,
                   disk_write_rate_mib_s=np.where(rng.random(n) < 0.5, rng.uniform(0.0, 30.0, n), np.nan),
                   cold=rng.random(n) < 0.1)


def same(a: CostEstimates, b: CostEstimates) -> None:
    for f in fields(CostEstimates):
        x, y = getattr(a, f.name), getattr(b, f.name)
        assert (x == y) if f.name == "model" else np.array_equal(x, y, equal_nan=x.dtype.kind == "f"), f.name


@pytest.mark.parametrize("profiles", [(), ("", "lab"), ("snu", "rig", "never-calibrated")])
@pytest.mark.parametrize("disks", [False, True])
def test_candidates_ranked_from_a_table_as_from_rows(model: CostPredictor, profiles: tuple[str, ...],
                                                     disks: bool) -> None:
    request = candidates(400, seed=len(profiles) + disks, disks=disks)
    by_vm = [profiles[v % len(profiles)] for v in range(len(request))] if profiles else []
    same(LearnedMoveCosts(model, profiles=by_vm).estimate(request),
         LearnedMoveCosts(RowsOnly(model), profiles=by_vm).estimate(request))


def test_candidates_are_ranked_from_what_their_qemu_holds_resident(model: CostPredictor) -> None:
    """Advice estimates the first pass from it (advisor.physics.first_pass_mib), and so do the plans' candidates:
    on hosts served by the physics (a profile the learned model does not know) a row with it is priced otherwise
    than without, a row without as before; the served learned model (schema v4) never read it, and is served as
    it was trained."""
    request = candidates(400, seed=5, disks=False)
    assert request.resident_memory_mib is not None
    given = ~np.isnan(request.resident_memory_mib)
    unaware = replace(request, resident_memory_mib=None)
    # where resident less QEMU's own reads more than the memory in use (measured: below the RAM), it is sent
    read_more = given & (request.memory_mib < request.memory_configured_mib) & (
        np.nan_to_num(request.resident_memory_mib) - QEMU_OWN_RESIDENT_MIB > 1.05 * request.memory_mib)
    assert read_more.sum() > 20
    physics = ["never-calibrated"] * len(request)
    with_it = LearnedMoveCosts(model, profiles=physics).estimate(request)
    without = LearnedMoveCosts(model, profiles=physics).estimate(unaware)
    assert np.array_equal(with_it.data_mib[~given], without.data_mib[~given])
    assert (with_it.data_mib[read_more, 1] > without.data_mib[read_more, 1]).mean() > 0.9
    learned = LearnedMoveCosts(model).estimate(request)
    assert np.array_equal(learned.data_mib, LearnedMoveCosts(model).estimate(unaware).data_mib)


def test_candidates_are_ranked_from_their_working_set_and_floor_readings(model: CostPredictor) -> None:
    """On hosts served by the physics, as advice's rows are: pre-copy's rounds re-send at most the working set (rows
    0, 1: a guest dirtying 30 MiB/s over 40 MiB), and a busy guest's reading at page sampling's floor is blind, its
    rate taken as the link's (rows 2, 3)."""
    n = 4
    request = CostRequest(
        vm=np.arange(n), target=np.zeros(n, dtype=np.int64), memory_mib=np.full(n, 4096.0),
        memory_configured_mib=np.full(n, 4096.0), dirty_rate_mib_s=np.array([30.0, 30.0, 2.0, 2.0]),
        bandwidth_mib_s=np.full(n, 117.0), postcopy_allowed=np.ones(n, dtype=bool), max_downtime_ms=300.0,
        dirty_rate_known=np.ones(n, dtype=bool), working_set_mib=np.array([np.nan, 40.0, 0.5, 0.5]),
        dirty_at_floor=np.array([False, False, True, False]))
    physics = LearnedMoveCosts(model, profiles=["never-calibrated"] * n).estimate(request)
    precopy = TECHNIQUES.index(Technique.PRECOPY)
    assert not physics.feasible[2, precopy] and physics.rank_ms[2, precopy] > 2 * physics.rank_ms[3, precopy]
    assert physics.rank_ms[1, precopy] < 0.9 * physics.rank_ms[0, precopy]


@pytest.mark.parametrize(("field", "value"), [("memory_mib", 0.0), ("memory_mib", -2.0), ("dirty_rate_mib_s", math.nan),
                                              ("bandwidth_mib_s", math.inf), ("max_bandwidth_mib_s", 0.0),
                                              ("max_downtime_ms", -1.0)])
def test_a_table_is_refused_as_its_first_bad_row_is(field: str, value: float) -> None:
    rows = [(inputs, Technique.PRECOPY) for inputs in varied_inputs(40)]
    validate_table(InputTable.from_rows(rows), lambda: rows)  # all good
    rows[17] = (replace(rows[17][0], **{field: value}), Technique.PRECOPY)
    rows[30] = (replace(rows[30][0], memory_mib=-5.0), Technique.PRECOPY)
    with pytest.raises(ValueError) as refused:
        validate(rows[17][0])
    with pytest.raises(ValueError, match=f"^{re.escape(str(refused.value))}$"):
        validate_table(InputTable.from_rows(rows), lambda: rows)


def one_row(model: CostPredictor, inputs: MigrationInputs, technique: Technique) -> MigrationCost:
    """What advice makes of one inputs and technique: cold by its steps, a live technique with its local disks'
    copy, widened for the burst."""
    if not technique.is_live:
        return cold_cost(inputs, 60_000.0, local_disk_mib=inputs.local_disk_used_mib)
    cost = predict_with_disks(model, [(inputs, technique)])[0]
    burst = inputs.burst_dirty_rate_mib_s
    if burst is None:
        return cost
    return widen_for_burst(cost, predict_with_disks(model, [(replace(inputs, dirty_rate_mib_s=burst), technique)])[0],
                           burst)


def test_a_priced_batch_holds_each_row_s_cost(model: CostPredictor) -> None:
    many = [replace(inputs, local_disk_used_mib=2048.0 * (k % 3), local_disk_size_mib=4096.0 * (k % 3),
                    disk_write_rate_mib_s=None if k % 2 else 12.0) if k % 4 == 0 else inputs
            for k, inputs in enumerate(varied_inputs(60, seed=11))]
    techniques = (Technique.POSTCOPY, Technique.COLD, Technique.PRECOPY, Technique.PRECOPY_XBZRLE)
    batch = CostEstimator(model, None, RecentSamples(), lambda: 0.0).priced_many(many, techniques)
    expected = [one_row(model, inputs, t) for inputs in many for t in techniques]
    notes = [" ".join(c.notes) for c in expected]
    assert all(any(word in n for n in notes) for word in ("burst", "local disk", "not calibrated", "cold"))
    for got, want in zip(batch.columns(), cost_rows(expected).columns(), strict=True):  # before any cost is made
        assert np.array_equal(got, want, equal_nan=True)
    assert [batch.cost(k) for k in range(len(expected))] == expected
    assert CostEstimator(model, None, RecentSamples(), lambda: 0.0).costs_many(many, techniques) == [
        expected[k:k + len(techniques)] for k in range(0, len(expected), len(techniques))]
