"""The physics on a broad grid: the figures frozen when it replaced its three copies (ml/analytic.py,
ml/analytic_arrays.py, planning/engine/analytic.py, equal bit for bit then), the scalar answer row for row with
the arrays, and the properties that hold on every row. The learned models read these figures as features: a
change here needs a retrain."""

from __future__ import annotations

import numpy as np

from advisor.domain.model import MigrationInputs, Technique
from advisor.physics import DEFAULT_CONSTANTS, TECHNIQUES, analytic_arrays, analytic_costs
from tests.unit.physics.grid import COLUMNS, EXPECTED, grid

POSTCOPY = TECHNIQUES.index(Technique.POSTCOPY)


def test_the_figures_are_those_frozen_from_the_three_copies() -> None:
    a = analytic_arrays(*grid())
    expected = np.loadtxt(EXPECTED, delimiter=",")
    assert expected.shape == (len(a.rounds), len(COLUMNS))
    for i, name in enumerate(COLUMNS):
        np.testing.assert_allclose(getattr(a, name).astype(np.float64), expected[:, i], rtol=1e-9, err_msg=name)


def test_the_answer_per_row_is_the_arrays_inside_its_band() -> None:
    """Time and data rise with the dirty rate, so the expected case is the band's median; the downtime is a
    sawtooth in it (one more round resets it), so the expected case is only within the band."""
    code, memory, dirty, link, cap, downtime = grid()
    a = analytic_arrays(code, memory, dirty, link, cap, downtime)
    rows = [(MigrationInputs(float(m), float(d), float(b), float(c), float(t)), TECHNIQUES[int(k)])
            for k, m, d, b, c, t in zip(code, memory, dirty, link, cap, downtime, strict=True)]
    costs = analytic_costs(rows)
    assert [c.total_time_ms.median for c in costs] == a.total_time_ms.tolist()
    assert all(c.downtime_ms.low <= d <= c.downtime_ms.high for c, d in zip(costs, a.downtime_ms, strict=True))
    assert [c.transferred_mib.median for c in costs] == a.transferred_mib.tolist()
    assert [c.converges for c in costs] == a.converges.tolist()
    assert all(c.total_time_ms.low <= c.total_time_ms.median <= c.total_time_ms.high for c in costs)


def test_properties_on_every_row() -> None:
    code, memory, dirty, link, cap, downtime = grid()
    a = analytic_arrays(code, memory, dirty, link, cap, downtime)
    usable = np.minimum(link, cap)
    post = code == POSTCOPY
    c = DEFAULT_CONSTANTS
    # post-copy sends every page once, at the usable bandwidth, and always ends
    np.testing.assert_allclose(a.transferred_mib[post], memory[post] * c.postcopy_overhead_ratio + c.device_state_mib)
    np.testing.assert_allclose(a.total_time_ms[post], a.transferred_mib[post] / usable[post] * 1000)
    assert a.converges[post].all()
    # an idle guest's pre-copy is one pass and converges; pre-copy never takes less than the time its data takes
    idle = ~post & (dirty == 0)
    assert a.converges[idle].all() and (a.rounds[idle] == 1).all()
    assert (a.total_time_ms[~post] >= a.transferred_mib[~post] / usable[~post] * 1000 * (1 - 1e-12)).all()
    # a round stops pre-copy only when what is left fits the allowed downtime (plus the device state)
    converged = ~post & a.converges
    budget_ms = downtime[converged] + (c.device_state_mib / usable[converged] * 1000 + c.resume_ms)
    assert (a.downtime_ms[converged] <= budget_ms * (1 + 1e-12)).all()
    assert (a.rounds[~post & ~a.converges] == c.max_rounds).all()
