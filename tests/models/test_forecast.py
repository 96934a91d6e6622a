"""The dirty-rate forecaster: the shipped artifact, ordering, monotonicity, history rules, fallback, feature parity."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from advisor.domain.model import DirtyRateForecast
from advisor.features.dirty import FEATURES, HISTORY_S, build_dirty_features, schema_hash
from advisor.features.samples import VM_FIELDS, SeriesStore
from advisor.ml.forecast import BASELINE_NAME, MODEL_NAME, LearnedDirtyForecaster, load_dirty_forecaster
from tests.support import REPO
from training import train_dirty

MODELS = REPO / "models" / "dirty_rate"
DATA = REPO / "training" / "data" / "dirty_rates.csv"
FIELDS = ("cpu_utilization", "memory_used_mib", "dirty_rate_mib_s")  # the forecaster finds its fields by name
NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def learned() -> LearnedDirtyForecaster:
    forecaster = load_dirty_forecaster(MODELS)
    assert isinstance(forecaster, LearnedDirtyForecaster), forecaster.model.fallback_reason
    return forecaster


@pytest.fixture(scope="module")
def recorded() -> pd.DataFrame:
    return train_dirty.load_readings(DATA)


def history(rates: np.ndarray, every_s: float, cpu: float = 0.3, mem: float = 2048.0) -> tuple[np.ndarray, np.ndarray]:
    """A window ending at NOW: one reading every `every_s`, oldest first."""
    n = len(rates)
    times = NOW - every_s * np.arange(n - 1, -1, -1, dtype=np.float64)
    values = np.column_stack([np.full(n, cpu), np.full(n, mem), rates]).astype(np.float32)
    return times, values


def test_shipped_model_loads(learned: LearnedDirtyForecaster) -> None:
    assert learned.model.name == MODEL_NAME
    assert learned.model.fallback_reason == ""
    assert (MODELS / learned.model.version / "card.json").is_file()
    card = json.loads((MODELS / learned.model.version / "card.json").read_text())
    assert card["schema_hash"] == schema_hash()
    assert card["training_cadences_s"] and card["collection"]["vms"] >= 4


def test_forecast_describes_itself(learned: LearnedDirtyForecaster) -> None:
    f = learned.forecast(*history(np.full(30, 20.0), 2.0), FIELDS, NOW)
    assert isinstance(f, DirtyRateForecast)
    assert f.samples_used == 30 and f.window_s == pytest.approx(58.0)
    text = f.describe()
    assert text.startswith("dirty rate ")
    assert f"by {MODEL_NAME} {learned.model.version} from 30 samples over 58 s" in text
    assert 8.0 < f.mean_mib_s < 32.0  # a steady 20 MiB/s history forecasts about that


def test_forecasts_are_ordered(learned: LearnedDirtyForecaster, recorded: pd.DataFrame) -> None:
    rng = np.random.default_rng(1)
    cases = [history(rng.uniform(0, 48, size=n), every) for every, n in ((2.0, 30), (15.0, 4), (30.0, 2))] * 10
    cases += [history(rng.uniform(0, 48, size=30), 2.0, cpu=float(rng.uniform()), mem=float(rng.uniform(1, 1e4)))
              for _ in range(20)]
    for (_, _), seg in list(recorded.groupby(["guest", "segment"]))[:4]:
        times, values = train_dirty.series_arrays(seg)
        cases += [(times[: i + 1], values[: i + 1]) for i in range(30, len(times), 17)]
    checked = 0
    for times, values in cases:
        f = learned.forecast(times, values, FIELDS, float(times[-1]))
        assert f is not None
        low, high = f.interval
        assert 0.0 <= low <= f.mean_mib_s <= high, f
        assert f.mean_mib_s <= f.p90_mib_s, f
        checked += 1
    assert checked >= 60


@pytest.mark.parametrize("every_s", [2.0, 15.0])
def test_more_recent_dirtying_never_forecasts_less(learned: LearnedDirtyForecaster, every_s: float) -> None:
    rng = np.random.default_rng(int(every_s))
    n = int(HISTORY_S // every_s)
    for _ in range(40):
        rates = rng.uniform(0, 45, size=n)
        base = learned.forecast(*history(rates, every_s), FIELDS, NOW)
        assert base is not None
        for k in (1, 2):
            for bump in (1.0, 8.0, 25.0):
                raised = rates.copy()
                raised[-k:] += bump
                f = learned.forecast(*history(raised, every_s), FIELDS, NOW)
                assert f is not None
                assert f.mean_mib_s >= base.mean_mib_s - 1e-9
                assert f.p90_mib_s >= base.p90_mib_s - 1e-9
                assert f.interval[0] >= base.interval[0] - 1e-9 and f.interval[1] >= base.interval[1] - 1e-9


def test_too_little_history_gives_none(learned: LearnedDirtyForecaster) -> None:
    empty = (np.empty(0), np.empty((0, 3), dtype=np.float32))
    assert learned.forecast(*empty, FIELDS, NOW) is None
    assert learned.forecast(*history(np.array([20.0]), 2.0), FIELDS, NOW) is None
    assert learned.forecast(*history(np.array([20.0, 22.0, 21.0]), 2.0), FIELDS, NOW) is None  # spans 4 s
    times, values = history(np.full(10, 20.0), 2.0)
    assert learned.forecast(times, values, FIELDS, NOW + HISTORY_S + 1) is None  # all older than the window
    values[:-1, 2] = np.nan  # measured once only; CPU and memory do not count
    assert learned.forecast(times, values, FIELDS, NOW) is None
    # samples newer than now are ignored
    assert learned.forecast(times, values, FIELDS, float(times[0])) is None
    with pytest.raises(ValueError, match="dirty_rate_mib_s"):
        learned.forecast(times, values[:, :2], FIELDS[:2], NOW)


def test_schema_mismatch_falls_back_with_the_reason(tmp_path: Path) -> None:
    shutil.copytree(MODELS, tmp_path / "dirty_rate")
    version = (tmp_path / "dirty_rate" / "ACTIVE").read_text().strip()
    card_path = tmp_path / "dirty_rate" / version / "card.json"
    card = json.loads(card_path.read_text())
    card["schema_hash"] = "0" * 64
    card_path.write_text(json.dumps(card))
    forecaster = load_dirty_forecaster(tmp_path / "dirty_rate")
    assert forecaster.model.name == BASELINE_NAME
    assert "schema mismatch" in forecaster.model.fallback_reason
    f = forecaster.forecast(*history(np.array([10.0, 30.0, 20.0, 12.0]), 5.0), FIELDS, NOW)
    assert f is not None
    assert f.mean_mib_s == pytest.approx(18.0) and f.p90_mib_s == pytest.approx(30.0)
    assert f.interval == (pytest.approx(10.0), pytest.approx(30.0))
    assert "fallback: feature schema mismatch" in f.describe()
    missing = load_dirty_forecaster(tmp_path / "nothing-here")
    assert missing.model.name == BASELINE_NAME and "ACTIVE" in missing.model.fallback_reason


@pytest.mark.parametrize("cadence_s", train_dirty.CADENCES_S[:2])
def test_features_equal_between_training_and_serving(recorded: pd.DataFrame, cadence_s: float) -> None:
    """Training builds features from the recorded readings; serving from what a SeriesStore hands back."""
    seg = next(g for _, g in recorded.groupby(["guest", "segment"]) if g["measured_mib_s"].std() > 2)
    times, values = train_dirty.series_arrays(seg)
    step = round(cadence_s / 2.0)
    compared = 0
    for i, fs in train_dirty.points(times, values, cadence_s, 2.0):
        if i % 11:
            continue
        store = SeriesStore(VM_FIELDS)
        for j in train_dirty.thinned(i + 1, step):
            cpu, mem, dirty = (float(v) for v in values[j])
            sample = {"cpu_utilization": cpu, "memory_used_mib": mem, "dirty_rate_mib_s": dirty}
            row = [sample.get(f, np.nan) for f in VM_FIELDS]  # the fields the sample has not: not measured
            store.add("vm", float(times[j]), [None if np.isnan(v) else v for v in row])
        w_times, w_values = store.window("vm")
        served = build_dirty_features(w_times, w_values, store.fields, float(times[i]))
        assert served is not None
        np.testing.assert_array_equal(served.row, fs.row)
        assert served.samples_used == fs.samples_used
        compared += 1
    assert compared >= 5
    assert len(fs.row) == len(FEATURES)
