"""Behaviour of the shipped learned cost model (models/cost/ACTIVE) and of its loader's refusals."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from advisor.domain.model import MigrationInputs, Technique
from advisor.ml.cost import MODEL_NAME, LearnedCostPredictor, load_cost_predictor
from advisor.ml.cost_features import schema_versions
from advisor.ml.predictor import AnalyticPredictor
from advisor.physics import TECHNIQUES
from tests.support import REPO

MODELS_DIR = REPO / "models" / "cost"
PRECOPY = [t for t in Technique if t.is_precopy]


@pytest.fixture(scope="module")
def predictor() -> LearnedCostPredictor:
    p = load_cost_predictor(MODELS_DIR)
    assert isinstance(p, LearnedCostPredictor), p.model.fallback_reason
    return p


def _grid(seed: int, n: int) -> list[tuple[float, float, float]]:
    rng = np.random.default_rng(seed)
    return [(float(rng.uniform(256, 8192)), float(rng.uniform(5, 125)), float(rng.uniform(30, 150))) for _ in range(n)]


def test_shipped_model_is_the_active_version(predictor: LearnedCostPredictor) -> None:
    version = (MODELS_DIR / "ACTIVE").read_text().strip()
    assert predictor.model.name == MODEL_NAME and predictor.model.version == version
    assert predictor.model.fallback_reason == ""
    card = json.loads((MODELS_DIR / version / "card.json").read_text())
    assert card["schema_hash"] in schema_versions()
    cost = predictor.predict(MigrationInputs(1024, 20, 100, 100), Technique.PRECOPY)
    assert cost.model == predictor.model and "p10-p90" in cost.model.interval_kind


@pytest.mark.parametrize("technique", PRECOPY)
def test_more_dirty_rate_never_predicts_a_faster_or_smaller_precopy(
    predictor: LearnedCostPredictor, technique: Technique
) -> None:
    dirty = np.linspace(0, 200, 41)
    for memory, bandwidth, cap in _grid(1, 15):
        costs = predictor.predict_many([(MigrationInputs(memory, d, bandwidth, cap), technique) for d in dirty])
        for attr in ("total_time_ms", "transferred_mib"):
            for end in ("low", "median", "high"):
                values = np.array([getattr(getattr(c, attr), end) for c in costs])
                assert (np.diff(values) >= -1e-9 * values[1:]).all(), (attr, end, memory, bandwidth, cap)


@pytest.mark.parametrize("technique", PRECOPY)
def test_more_bandwidth_never_predicts_a_slower_precopy(predictor: LearnedCostPredictor, technique: Technique) -> None:
    bandwidths = np.linspace(2, 200, 41)
    for memory, dirty, cap in _grid(2, 15):
        costs = predictor.predict_many([(MigrationInputs(memory, dirty, b, cap), technique) for b in bandwidths])
        values = np.array([c.total_time_ms.median for c in costs])
        assert (np.diff(values) <= 1e-9 * values[1:]).all(), (memory, dirty, cap)
        # and a higher speed cap is never slower either
        caps = predictor.predict_many([(MigrationInputs(memory, dirty, 120, c), technique) for c in bandwidths])
        values = np.array([c.total_time_ms.median for c in caps])
        assert (np.diff(values) <= 1e-9 * values[1:]).all()


def test_postcopy_time_tracks_memory_over_bandwidth(predictor: LearnedCostPredictor) -> None:
    for memory, bandwidth, cap in _grid(3, 30):
        usable = min(bandwidth, cap)
        cost = predictor.predict(MigrationInputs(memory, 10, bandwidth, cap), Technique.POSTCOPY)
        one_pass_ms = memory / usable * 1000
        assert 0.85 * one_pass_ms <= cost.total_time_ms.median <= 1.2 * one_pass_ms
        assert 0.9 * memory <= cost.transferred_mib.median <= 1.15 * memory
        assert cost.downtime_ms.median < 50 and cost.converges
        double = predictor.predict(MigrationInputs(2 * memory, 10, bandwidth, cap), Technique.POSTCOPY)
        assert 1.7 <= double.total_time_ms.median / cost.total_time_ms.median <= 2.3


def test_intervals_are_ordered_and_batch_equals_single(predictor: LearnedCostPredictor) -> None:
    rows = [
        (MigrationInputs(m, d, b, c, max_downtime_ms=dt), t)
        for (m, b, c), d, dt in zip(_grid(4, 20), np.linspace(0, 300, 20), [30.0, 300.0, 1000.0] * 7, strict=False)
        for t in TECHNIQUES
    ]
    many = predictor.predict_many(rows)
    assert len(many) == len(rows)
    for (_inputs, technique), cost in zip(rows, many, strict=True):
        assert cost.technique is technique
        for iv in (cost.total_time_ms, cost.downtime_ms, cost.transferred_mib):
            assert 0 < iv.low <= iv.median <= iv.high
    assert predictor.predict(*rows[7]) == many[7]
    assert predictor.predict_many([]) == []


def test_a_busy_vm_at_a_tiny_downtime_limit_does_not_converge(predictor: LearnedCostPredictor) -> None:
    busy = MigrationInputs(4096, 200, 100, 100, max_downtime_ms=10)
    assert not predictor.predict(busy, Technique.PRECOPY).converges
    assert predictor.predict(busy, Technique.POSTCOPY).converges
    idle = MigrationInputs(1024, 0.1, 100, 100)
    assert predictor.predict(idle, Technique.PRECOPY).converges


def _copy_active(tmp_path: Path) -> Path:
    version = (MODELS_DIR / "ACTIVE").read_text().strip()
    shutil.copytree(MODELS_DIR / version, tmp_path / version)
    (tmp_path / "ACTIVE").write_text(version + "\n")
    return tmp_path / version


def test_copied_artifact_loads(tmp_path: Path) -> None:
    _copy_active(tmp_path)
    assert isinstance(load_cost_predictor(tmp_path), LearnedCostPredictor)


def test_schema_mismatch_is_refused_with_the_analytic_fallback_and_reason(tmp_path: Path) -> None:
    version_dir = _copy_active(tmp_path)
    card = json.loads((version_dir / "card.json").read_text())
    card["schema_hash"] = "0" * 64
    (version_dir / "card.json").write_text(json.dumps(card))
    p = load_cost_predictor(tmp_path)
    assert isinstance(p, AnalyticPredictor)
    assert "feature schema mismatch" in p.model.fallback_reason
    cost = p.predict(MigrationInputs(1024, 10, 100, 100), Technique.PRECOPY)
    assert cost.model.name == "analytic" and "schema" in cost.model.fallback_reason


def test_missing_or_corrupt_artifacts_fall_back(tmp_path: Path) -> None:
    p = load_cost_predictor(tmp_path / "nowhere")
    assert isinstance(p, AnalyticPredictor) and "no active cost model" in p.model.fallback_reason

    version_dir = _copy_active(tmp_path)
    (version_dir / "total_time_ms.txt").write_text("not a model\n")
    p = load_cost_predictor(tmp_path)
    assert isinstance(p, AnalyticPredictor) and "corrupt artifact" in p.model.fallback_reason

    (version_dir / "card.json").write_text("{broken")
    assert "not valid JSON" in load_cost_predictor(tmp_path).model.fallback_reason

    (tmp_path / "ACTIVE").write_text("../../etc\n")
    assert "no valid version" in load_cost_predictor(tmp_path).model.fallback_reason


def test_calibrated_tails_widen_until_held_out_groups_are_covered() -> None:
    from training.cost_eval import heldout_bounds
    from training.cost_model import NOMINAL_COVERAGE, calibrated_offsets

    rng = np.random.default_rng(0)
    # four groups whose errors spread differently: pooled p10/p90 of the others under-cover a wide group
    groups = np.repeat(np.array(["a", "b", "c", "d"]), 500)
    residual = rng.normal(0, np.repeat([0.05, 0.1, 0.2, 0.4], 500))
    _, _, tail = calibrated_offsets(residual, groups)
    assert tail < 0.1
    plain = [float(((residual[groups == g] >= np.quantile(residual[groups != g], 0.1))
                    & (residual[groups == g] <= np.quantile(residual[groups != g], 0.9))).sum()) for g in "abcd"]
    bounds = heldout_bounds(residual, groups)
    calibrated = float(((residual >= bounds[:, 0]) & (residual <= bounds[:, 1])).mean())
    assert sum(plain) / len(residual) < NOMINAL_COVERAGE <= calibrated + 0.03
    assert (bounds[:, 0] <= 0).all() and (bounds[:, 1] >= 0).all()


def test_card_reports_held_out_figures_per_source_and_rho_band() -> None:
    version = (MODELS_DIR / "ACTIVE").read_text().strip()
    card = json.loads((MODELS_DIR / version / "card.json").read_text())
    assert card["promotion"]["reason"]  # why it was (or was not) promoted
    snu = card["metrics"]["snu"]["learned"]
    for technique in TECHNIQUES:
        for target in ("total_time_ms", "downtime_ms", "transferred_mib"):
            # nested held-out coverage of the nominal 80% interval, on SNU workloads the model never saw
            assert snu[str(technique)][target]["coverage"] >= 0.75, (technique, target)
    for source in ("snu", "lab"):
        bands = card["metrics"]["coverage"][source]["total_time_ms"]
        assert set(bands) == {"rho<=0.4", "0.4<rho<=1", "rho>1"}
    conv = card["metrics"]["convergence"]["full"]
    assert {"learned", "snu_only", "analytic", "guard"} <= set(conv)
    cells = card["intervals"]["cells"]["total_time_ms"]
    assert all(0 <= c.get("tail", 0) <= 0.1 for c in cells.values())


def test_the_physics_guard_never_answers_converges_where_pre_copy_cannot(predictor: LearnedCostPredictor) -> None:
    # a lab guest rewriting 64 MiB at 64 MiB/s over an 8 MiB/s link, 300 ms downtime: 2.4 MiB fit the budget
    busy = MigrationInputs(90, 64, 1192, 8, 300, working_set_mib=64, memory_configured_mib=128,
                           host_profile="lab", deadline_ms=90_000)
    for technique in (Technique.PRECOPY, Technique.PRECOPY_XBZRLE, Technique.PRECOPY_COMPRESS):
        cost = predictor.predict(busy, technique)
        assert not cost.converges and cost.converge_probability == 0.0
        assert any("cannot converge" in n for n in cost.notes), cost.notes
    assert predictor.predict(busy, Technique.POSTCOPY).converge_probability == 1.0
    idle = MigrationInputs(90, 0.0, 1192, 64, 300, host_profile="lab", deadline_ms=90_000)
    assert predictor.predict(idle, Technique.PRECOPY).converges


def test_a_profile_correction_moves_that_profile_only(tmp_path: Path) -> None:
    """The lab's corrections apply to lab hosts; SNU-profile predictions are the base's alone (what served
    well keeps serving exactly as well); a correction for a profile the code does not know is refused."""
    version_dir = _copy_active(tmp_path)
    card = json.loads((version_dir / "card.json").read_text())
    corrections = [role for role in card["files"] if "@" in role]
    assert corrections, "the active model has no per-profile correction"
    with_them = load_cost_predictor(tmp_path)
    card["files"] = {role: name for role, name in card["files"].items() if "@" not in role}
    (version_dir / "card.json").write_text(json.dumps(card))
    base_only = load_cost_predictor(tmp_path)
    assert isinstance(with_them, LearnedCostPredictor) and isinstance(base_only, LearnedCostPredictor)
    moved = 0
    for memory, dirty, bandwidth in _grid(5, 20):
        for profile in ("snu", "lab"):
            inputs = MigrationInputs(memory, dirty, bandwidth, bandwidth, host_profile=profile)
            a = with_them.predict(inputs, Technique.PRECOPY).total_time_ms.median
            b = base_only.predict(inputs, Technique.PRECOPY).total_time_ms.median
            if profile == "snu":
                assert a == pytest.approx(b, rel=1e-12)
            else:
                moved += a != pytest.approx(b, rel=1e-6)
    assert moved > 0
    card["files"]["total_time_ms@cloud"] = card["files"]["total_time_ms"]
    (version_dir / "card.json").write_text(json.dumps(card))
    refused = load_cost_predictor(tmp_path)
    assert isinstance(refused, AnalyticPredictor) and "unknown host profile 'cloud'" in refused.model.fallback_reason


def test_a_deadline_shorter_than_one_pass_rules_out_post_copy_too(predictor: LearnedCostPredictor) -> None:
    # 32 GiB at 8 MiB/s: one pass takes 4,096 s, far beyond 10 s, whatever the technique
    huge = MigrationInputs(32768, 1.0, 8, 8, 300, memory_configured_mib=32768, deadline_ms=10_000)
    post = predictor.predict(huge, Technique.POSTCOPY)
    assert not post.converges and post.converge_probability == 0.0
    assert any(n.startswith("postcopy cannot end within 10 s: one pass over") for n in post.notes), post.notes
    assert predictor.predict(replace(huge, deadline_ms=0.0), Technique.POSTCOPY).converges  # it ends, later


def test_a_deadline_note_says_the_first_pass_the_served_schema_judged(predictor: LearnedCostPredictor) -> None:
    # 2.1.0 (schema v4) never reads resident memory: its guard judges the 1,024 MiB in use (128 s at 8 MiB/s, past
    # the 60 s deadline) and its note says so, not the 2,048 MiB resident memory would give (at most twice in use)
    vm = MigrationInputs(1024, 1.0, 8, 8, 300, memory_configured_mib=8192, memory_source="in use",
                         deadline_ms=60_000, resident_memory_mib=4000)
    assert predictor.model.version == "2.1.0"
    post = predictor.predict(vm, Technique.POSTCOPY)
    assert not post.converges
    assert any(n.startswith("postcopy cannot end within 60 s: one pass over 1024 MiB at 8.0 MiB/s takes 128 s")
               for n in post.notes), post.notes
