"""SPECpower host power models, interpolated exactly as CloudSim's PowerModelSpecPower does.

The formula is reproduced operation by operation (including its `u % 0.1 == 0` shortcut) so that PABFD's
power-difference comparisons, which decide placements, tie and order the same way as in CloudSim.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from advisor.simulation.arrays import FloatArray


@dataclass(frozen=True)
class PowerModel:
    """Power in watts at 0, 10, ..., 100 % CPU (11 values), linear in between."""

    name: str
    watts: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.watts) != 11:
            raise ValueError(f"{self.name}: a SPECpower table has 11 values, got {len(self.watts)}")

    @property
    def max_watts(self) -> float:
        return self.watts[10]

    def power(self, utilization: float) -> float:
        """Power at one utilisation in [0, 1]."""
        return float(power_w(np.array([self.watts]), np.array([utilization]))[0])


# Published SPECpower_ssj2008 results, as CloudSim ships them (power/models/PowerModelSpecPower*.java).
HP_ML110_G4 = PowerModel("HP ProLiant ML110 G4 (Xeon 3040)", (86, 89.4, 92.6, 96, 99.5, 102, 106, 108, 112, 114, 117))
HP_ML110_G5 = PowerModel("HP ProLiant ML110 G5 (Xeon 3075)", (93.7, 97, 101, 105, 110, 116, 121, 125, 129, 133, 135))
IBM_X3550_X5675 = PowerModel("IBM x3550 M3 (2 x Xeon X5675)", (58.4, 98, 109, 118, 128, 140, 153, 170, 189, 205, 222))


def power_w(tables: FloatArray, utilization: FloatArray) -> FloatArray:
    """Row-wise power: tables is (n, 11) watts, utilization (n,) in [0, 1]; values outside are clamped."""
    u = np.clip(utilization, 0.0, 1.0)
    rows = np.arange(u.shape[0])
    tenth = u * 10
    low = np.floor(tenth).astype(np.int64)
    high = np.ceil(tenth).astype(np.int64)
    p_low = tables[rows, low]
    delta = (tables[rows, high] - p_low) / 10
    interpolated = p_low + delta * (u - low / 10) * 100
    exact = np.fmod(u, 0.1) == 0
    if exact.any():
        interpolated[exact] = tables[rows[exact], tenth[exact].astype(np.int64)]
    result: FloatArray = interpolated
    return result
