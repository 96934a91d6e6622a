"""The physics module equals the three copies it replaces, on the broad grid (to be deleted with them)."""

from __future__ import annotations

import numpy as np

from advisor.domain.model import MigrationInputs
from advisor.ml import analytic as old_scalar
from advisor.ml.analytic_arrays import analytic_arrays as old_arrays
from advisor.physics import TECHNIQUES, analytic_arrays, analytic_point, predict_analytic
from advisor.planning.engine.analytic import Constants, point
from tests.unit.physics.grid import grid


def test_the_array_copy_is_equal_bit_for_bit() -> None:
    code, memory, dirty, link, cap, downtime = grid()
    new, old = analytic_arrays(code, memory, dirty, link, cap, downtime), old_arrays(code, memory, dirty, link, cap,
                                                                                     downtime)
    for name in ("total_time_ms", "downtime_ms", "transferred_mib", "converges", "rounds"):
        np.testing.assert_array_equal(getattr(new, name), getattr(old, name), err_msg=name)


def test_the_engine_copy_is_equal_bit_for_bit() -> None:
    code, memory, dirty, link, cap, _ = grid()
    usable = np.minimum(link, cap)
    for limit in (30.0, 300.0, 2000.0):
        new = analytic_arrays(code, memory, dirty, usable, usable, limit)
        old = point(code, memory, dirty, usable, limit, Constants())
        for name, value in zip(("total_time_ms", "downtime_ms", "transferred_mib", "converges"), old, strict=True):
            np.testing.assert_array_equal(getattr(new, name), value, err_msg=name)


def test_the_scalar_copy_is_equal_bit_for_bit_with_its_band_and_notes() -> None:
    code, memory, dirty, link, cap, downtime = grid()
    for k in range(len(code)):
        inputs = MigrationInputs(float(memory[k]), float(dirty[k]), float(link[k]), float(cap[k]), float(downtime[k]))
        technique = TECHNIQUES[int(code[k])]
        assert analytic_point(inputs, technique) == old_scalar.analytic_point(inputs, technique)
        assert predict_analytic(inputs, technique) == old_scalar.predict_analytic(inputs, technique)
