"""SPECpower interpolation, as CloudSim computes it."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.simulation.power import HP_ML110_G4, HP_ML110_G5, power_w


@pytest.mark.parametrize(
    ("model", "utilization", "watts"),
    [
        (HP_ML110_G4, 0.0, 86.0),
        (HP_ML110_G4, 1.0, 117.0),
        (HP_ML110_G4, 0.3, 96.0),
        (HP_ML110_G4, 0.05, 87.7),  # halfway between 86 and 89.4
        (HP_ML110_G4, 0.55, 104.0),
        (HP_ML110_G5, 0.25, 103.0),
        (HP_ML110_G5, 0.95, 134.0),
        (HP_ML110_G5, 0.0, 93.7),
        (HP_ML110_G5, 1.0, 135.0),
    ],
)
def test_power_table_interpolation(model, utilization, watts):
    assert model.power(utilization) == pytest.approx(watts, abs=1e-9)


def test_power_rows_use_their_own_table_and_clamp():
    tables = np.array([HP_ML110_G4.watts, HP_ML110_G5.watts, HP_ML110_G4.watts])
    got = power_w(tables, np.array([0.5, 0.5, 1.7]))
    assert got.tolist() == pytest.approx([102.0, 116.0, 117.0])


def test_power_is_monotone_on_a_fine_grid():
    u = np.linspace(0, 1, 1001)
    for model in (HP_ML110_G4, HP_ML110_G5):
        p = power_w(np.tile(model.watts, (u.size, 1)), u)
        assert (np.diff(p) >= -1e-12).all()
