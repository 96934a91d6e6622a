"""The learned models read the working-set physics (schemas v4 and v5): hand-computed figures of the features, and
what the shipped model answers for a blind dirty-rate reading."""

from __future__ import annotations

import hashlib
import itertools
import math
from dataclasses import replace

import numpy as np
import pytest

from advisor.domain.model import Host, MigrationInputs, Technique, Vm
from advisor.features.inputs import InputTable, VmObservations, migration_inputs
from advisor.features.samples import Latest
from advisor.ml.cost import LearnedCostPredictor, load_cost_predictor
from advisor.ml.cost_features import TECHNIQUES, build_features_from_inputs
from tests.support import REPO

# sha256 of schema v4's features over `_grid_rows` (6 significant digits), taken at commit 56e18f6
V4_GRID_DIGEST = "884726d5adeea2d7ae3437d452d265be9c17ec3bd091f4c6f59f396113c48642"
# A 256 MiB lab guest, 80.4 MiB in use (RAM - MemAvailable), rewriting 16 MiB at 16 MiB/s, cap 32 MiB/s, 300 ms.
LAB = MigrationInputs(80.4, 16.0, 32.0, 32.0, 300.0, memory_configured_mib=256.0, memory_source="in use",
                      working_set_mib=16.0, host_profile="lab", deadline_ms=90_000.0)


def test_the_features_are_the_working_set_physics_by_hand() -> None:
    fs = build_features_from_inputs([(LAB, Technique.PRECOPY)])
    # first pass 80.4 MiB in 2.5125 s; the 16 MiB working set re-sent in 0.5 s; the 8 MiB rewritten meanwhile fit
    # the 9.6 MiB budget: 8.1 MiB with the device state in the stop
    downtime = 8.1 / 32 * 1000 + 1.0
    assert fs.column("log_first_pass_mib")[0] == pytest.approx(math.log(80.4))
    assert fs.column("analytic_rounds")[0] == 2.0 and fs.column("analytic_not_converged")[0] == 0.0
    assert fs.column("log_analytic_transferred_mib")[0] == pytest.approx(math.log(80.4 + 16.0 + 8.1))
    assert fs.column("log_analytic_downtime_ms")[0] == pytest.approx(math.log(downtime))
    assert fs.column("log_analytic_total_time_ms")[0] == pytest.approx(math.log(96.4 / 32 * 1000 + downtime))
    # time and data are learned relative to one pass over the first pass's pages
    assert fs.offset("total_time_ms")[0] == pytest.approx(math.log(80.4 / 32 * 1000))


def test_measured_non_zero_pages_are_the_first_pass() -> None:
    measured = InputTable.from_rows([(LAB, Technique.POSTCOPY)])
    nonzero = InputTable.from_rows([(MigrationInputs(**{**LAB.__dict__, "nonzero_memory_mib": 95.0}),
                                     Technique.POSTCOPY)])
    assert measured.first_pass_mib.tolist() == [80.4] and nonzero.first_pass_mib.tolist() == [95.0]
    fs = build_features_from_inputs(nonzero.rows())
    # post-copy: one pass over the 95 MiB (x 1.01) and the device state
    assert fs.column("log_analytic_transferred_mib")[0] == pytest.approx(math.log(95.0 * 1.01 + 0.1))


@pytest.fixture(scope="module")
def predictor() -> LearnedCostPredictor:
    p = load_cost_predictor(REPO / "models" / "cost")
    assert isinstance(p, LearnedCostPredictor), p.model.fallback_reason
    return p


def test_a_blind_reading_is_never_left_to_plain_pre_copy(predictor: LearnedCostPredictor) -> None:
    """A stress-ng-like guest: vCPUs busy, page sampling reads 0 at 1 s and 4 s. Its dirty rate is unknown, taken
    as the link's rate: plain pre-copy cannot converge, and the answer says why."""
    now = 1_800_000_000.0
    vm = Vm("stress", "a", 256, 1)
    host = Host("a", 2, 4096, network_bandwidth_mib_s=32.0, labels={"advisor.profile": "lab"})
    seen = VmObservations(Latest(0.0, now), Latest(80.4, now), Latest(0.0, now), Latest(1.0, now))
    inputs = migration_inputs(vm, host, None, seen, None)
    assert not inputs.dirty_rate_known and inputs.dirty_rate_mib_s == 32.0
    cost = predictor.predict(inputs, Technique.PRECOPY)
    assert not cost.converges and cost.converge_probability == 0.0
    assert any(n.startswith("dirty rate unknown: the guest is busy while page sampling reads ~0") for n in cost.notes)
    assert predictor.predict(inputs, Technique.POSTCOPY).converges


def test_the_served_model_reads_a_reading_at_the_floor_as_it_was_trained(predictor: LearnedCostPredictor) -> None:
    """The physics takes a busy guest's reading at page sampling's floor as blind; the learned model (schema v4,
    trained before that rule) reads it as measured, so its answer is the same with the flag or without."""
    inputs = MigrationInputs(256, 2.0, 1250, 8, 300, memory_configured_mib=256, working_set_mib=0.0,
                             deadline_ms=90_000, host_profile="lab")
    assert predictor.predict(replace(inputs, dirty_rate_at_floor=True), Technique.PRECOPY) == \
        predictor.predict(inputs, Technique.PRECOPY)


def _grid_rows() -> list[tuple[MigrationInputs, Technique]]:
    """Every technique over guests of 128 MiB-16 GiB, dirty rates from none to three times the link, working sets
    from none measured to all of memory, caps below and above the link, allowed downtimes of 30 ms-2 s."""
    rows = []
    for technique, memory, rho, share, (link, cap), downtime in itertools.product(
            TECHNIQUES, (128.0, 1024.0, 16384.0), (0.0, 0.5, 0.95, 1.0, 1.5, 3.0), (math.nan, 0.02, 0.3, 1.0),
            ((100.0, 100.0), (1000.0, 32.0)), (30.0, 300.0, 2000.0)):
        rows.append((MigrationInputs(memory * 0.6, rho * min(link, cap), link, cap, downtime,
                                     memory_configured_mib=memory,
                                     working_set_mib=None if math.isnan(share) else share * memory * 0.6,
                                     host_profile="lab"), technique))
    return rows


def _digest(matrix: np.ndarray) -> str:
    text = "\n".join(",".join(f"{v:.6g}" for v in row) for row in matrix)
    return hashlib.sha256(text.encode()).hexdigest()


def test_schema_v4_features_are_the_ones_its_models_learned_from() -> None:
    """The physics settles a pre-copy whose guest rewrites its working set faster than the link sends as QEMU's syncs
    below the budget let it; schema v4's features keep the stop after whole rounds its models were trained on, so a
    v4 model is served as trained. The digest of the features over a broad grid was taken before the physics
    changed."""
    assert _digest(build_features_from_inputs(_grid_rows(), version=4).matrix) == V4_GRID_DIGEST


def test_schema_v5_reads_the_syncs_below_the_budget() -> None:
    """v5 differs from v4 only where the stop rule does: rows with a measured working set that whole rounds no longer
    bring closer to the budget, which settle and converge where v4 said they would not."""
    rows = _grid_rows()
    v4, v5 = build_features_from_inputs(rows, version=4), build_features_from_inputs(rows, version=5)
    same = (v4.matrix == v5.matrix) | (np.isnan(v4.matrix) & np.isnan(v5.matrix))
    differs = ~np.all(same, axis=1)
    assert 0 < differs.sum() < len(rows)
    assert all(rows[k][0].working_set_mib is not None for k in np.flatnonzero(differs))
    assert np.any(v5.analytic.converges & ~v4.analytic.converges)
    assert not np.any(v4.analytic.converges & ~v5.analytic.converges)


def test_a_schema_the_code_does_not_build_is_refused() -> None:
    with pytest.raises(ValueError, match="feature schema v3 is not built by this code"):
        build_features_from_inputs(_grid_rows()[:1], version=3)
