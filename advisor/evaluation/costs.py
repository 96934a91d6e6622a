"""The project's learned cost model as the simulator's migration-time model (and, re-exported from
advisor.ml.move_costs, behind the engine's `MoveCosts`).

`LearnedMigrationTime` is a `SimulationConfig(migration_time=...)` model: the median predicted pre-copy time
(CloudSim models pre-copy: the VM keeps running on its source) at the simulator's memory and bandwidth. PlanetLab
traces carry no dirty rate, so one is assumed, proportional to CPU utilisation: a fully busy VM dirties
`dirty_mib_s_at_full_cpu` (40 MiB/s by default, the upper middle of the SNU guests: dacapo 34, oltp 30, mem 31
MiB/s on average), an idle one nothing. The bandwidth is CloudSim's: half the target's link carries the migration.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from advisor.domain.model import MigrationInputs, Technique
from advisor.ml.cost import load_cost_predictor
from advisor.ml.move_costs import LearnedMoveCosts, cost_arrays
from advisor.ml.predictor import CostPredictor
from advisor.planning.engine.snapshot import FloatArray

__all__ = ["LearnedMigrationTime", "LearnedMoveCosts", "learned_predictor"]

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "models" / "cost"
DIRTY_MIB_S_AT_FULL_CPU = 40.0
MB = 1e6
MIB = float(1 << 20)


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
        seconds: FloatArray = np.maximum(cost_arrays(self.predictor, rows)[0][:, 1] / 1000.0, 1e-3)
        return seconds


def learned_predictor(models_dir: Path = MODELS) -> CostPredictor:
    """The active learned cost model (the analytic model, saying why, when none loads)."""
    return load_cost_predictor(models_dir)
