"""The project's learned cost model behind the engine's `MoveCosts`, and as the simulator's migration-time model.

`LearnedMoveCosts` asks the learned model (`advisor.ml.cost`, LightGBM over the analytic features, p10-p90
intervals) for every allowed technique of every candidate move in one `predict_arrays` call, then lets the
engine's `select` choose the technique. The learned model gives intervals, not a probability of converging; the
probability reported is the share of the p10-p90 downtime interval below the limit (linear), 1 for post-copy.

`LearnedMigrationTime` is a `SimulationConfig(migration_time=...)` model: the median predicted pre-copy time
(CloudSim models pre-copy: the VM keeps running on its source) at the simulator's memory and bandwidth. PlanetLab
traces carry no dirty rate, so one is assumed, proportional to CPU utilisation: a fully busy VM dirties
`dirty_mib_s_at_full_cpu` (40 MiB/s by default, the upper middle of the SNU guests: dacapo 34, oltp 30, mem 31
MiB/s on average), an idle one nothing. The bandwidth is CloudSim's: half the target's link carries the migration.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from advisor.domain.model import MigrationInputs, Technique
from advisor.ml.cost import load_cost_predictor
from advisor.ml.predictor import CostPredictor
from advisor.planning.engine import TECHNIQUES, CostEstimates, CostRequest, TechniqueRules, select
from advisor.planning.engine.snapshot import FloatArray

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models" / "cost"
DIRTY_MIB_S_AT_FULL_CPU = 40.0
MB = 1e6
MIB = float(1 << 20)


def _arrays(predictor: CostPredictor, rows: Sequence[tuple[MigrationInputs, Technique]]) -> tuple[FloatArray, ...]:
    """(total ms, downtime ms, MiB) as (n, 3) arrays and converges, from predict_arrays when the model has it."""
    batch = getattr(predictor, "predict_arrays", None)
    if batch is not None:
        a = batch(rows)
        return a.total_time_ms, a.downtime_ms, a.transferred_mib, np.asarray(a.converges, dtype=np.float64)
    costs = predictor.predict_many(rows)

    def col(name: str) -> FloatArray:
        return np.array([[getattr(c, name).low, getattr(c, name).median, getattr(c, name).high] for c in costs])

    return (col("total_time_ms"), col("downtime_ms"), col("transferred_mib"),
            np.array([c.converges for c in costs], dtype=np.float64))


class LearnedMoveCosts:
    """The engine's MoveCosts over a CostPredictor (the learned model, or the analytic one it falls back to)."""

    def __init__(self, predictor: CostPredictor, rules: TechniqueRules | None = None) -> None:
        self.predictor = predictor
        self.rules = rules or TechniqueRules()

    @property
    def name(self) -> str:
        m = self.predictor.model
        return f"{m.name} {m.version}" + (f" (fallback: {m.fallback_reason})" if m.fallback_reason else "")

    def estimate(self, request: CostRequest) -> CostEstimates:
        n, t = len(request), len(TECHNIQUES)
        used = [k for k, tech in enumerate(TECHNIQUES) if tech in self.rules.techniques]
        limit = request.max_downtime_ms or 300.0
        rows = [
            (MigrationInputs(float(m), float(d), float(b), float(b), limit), TECHNIQUES[k])
            for k in used
            for m, d, b in zip(np.maximum(request.memory_mib, 1.0).tolist(),
                               np.maximum(request.dirty_rate_mib_s, 0.0).tolist(),
                               np.maximum(request.bandwidth_mib_s, 1e-3).tolist(), strict=True)
        ]
        total = np.full((t, n, 3), 1e12)
        down = np.full((t, n, 3), 1e12)
        data = np.full((t, n, 3), 1e12)
        converges = np.zeros((t, n), dtype=bool)
        p = np.zeros((t, n))
        if rows:
            tt, dd, mm, cc = _arrays(self.predictor, rows)
            for j, k in enumerate(used):
                part = slice(j * n, (j + 1) * n)
                total[k], down[k], data[k], converges[k] = tt[part], dd[part], mm[part], cc[part] > 0
                low, high = dd[part, 0], dd[part, 2]
                share = np.clip((limit - low) / np.maximum(high - low, 1e-9), 0.0, 1.0)
                p[k] = 1.0 if TECHNIQUES[k] is Technique.POSTCOPY else share
        return select(request, total, down, data, converges, p, self.rules, self.name)


class LearnedMigrationTime:
    """A simulator migration-time model: `(ram_mb, cpu_utilization, bandwidth_mbit_s) -> seconds` (see above)."""

    def __init__(self, predictor: CostPredictor, dirty_mib_s_at_full_cpu: float = DIRTY_MIB_S_AT_FULL_CPU,
                 technique: Technique = Technique.PRECOPY) -> None:
        self.predictor = predictor
        self.dirty = dirty_mib_s_at_full_cpu
        self.technique = technique

    @property
    def name(self) -> str:
        m = self.predictor.model
        return f"{m.name} {m.version} {self.technique}, dirty rate {self.dirty:g} MiB/s x CPU utilisation"

    def inputs(self, ram_mb: FloatArray, cpu_utilization: FloatArray,
               bandwidth_mbit_s: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(memory MiB, dirty rate MiB/s, bandwidth MiB/s) of the model's inputs."""
        memory = np.asarray(ram_mb, dtype=np.float64) * MB / MIB
        dirty = np.clip(np.asarray(cpu_utilization, dtype=np.float64), 0.0, 1.0) * self.dirty
        bandwidth = np.asarray(bandwidth_mbit_s, dtype=np.float64) / 2 * 1e6 / 8 / MIB
        return memory, dirty, bandwidth

    def __call__(self, ram_mb: FloatArray, cpu_utilization: FloatArray, bandwidth_mbit_s: FloatArray) -> FloatArray:
        memory, dirty, bandwidth = self.inputs(ram_mb, cpu_utilization, bandwidth_mbit_s)
        if memory.shape[0] == 0:
            return np.zeros(0)
        rows = [(MigrationInputs(m, d, b, b), self.technique)
                for m, d, b in zip(memory.tolist(), dirty.tolist(), bandwidth.tolist(), strict=True)]
        seconds: FloatArray = np.maximum(_arrays(self.predictor, rows)[0][:, 1] / 1000.0, 1e-3)
        return seconds


def learned_predictor(models_dir: Path = MODELS) -> CostPredictor:
    """The active learned cost model (the analytic model, saying why, when none loads)."""
    return load_cost_predictor(models_dir)
