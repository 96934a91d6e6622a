"""The engine's analytic costs are the physics' band (advisor.physics), and the technique choice over arrays
follows the technique policy's rules."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.domain.model import MigrationInputs, Objective, Technique
from advisor.physics import predict_analytic
from advisor.planning.engine import TECHNIQUES, AnalyticMoveCosts, CostRequest, TechniqueRules
from advisor.planning.technique import choose_technique


def request(memory: list[float], dirty: list[float], bandwidth: list[float], postcopy: list[bool] | None = None,
            **kw: object) -> CostRequest:
    n = len(memory)
    return CostRequest(np.arange(n), np.zeros(n, dtype=np.int64), np.array(memory), np.array(dirty),
                       np.array(bandwidth), np.array(postcopy if postcopy is not None else [True] * n),
                       **kw)  # type: ignore[arg-type]


def test_the_band_matches_the_analytic_predictions_interval() -> None:
    est = AnalyticMoveCosts(TechniqueRules(techniques=(Technique.PRECOPY,))).estimate(
        request([2048.0], [20.0], [100.0]))
    expected = predict_analytic(MigrationInputs(2048.0, 20.0, 100.0, 100.0), Technique.PRECOPY)
    assert est.total_ms[0].tolist() == pytest.approx(
        [expected.total_time_ms.low, expected.total_time_ms.median, expected.total_time_ms.high])
    assert est.downtime_ms[0, 1] == pytest.approx(expected.downtime_ms.median)


@pytest.mark.parametrize("postcopy", [True, False])
@pytest.mark.parametrize("limits", [{}, {"max_downtime_ms": 30.0}, {"max_downtime_ms": 1.0},
                                    {"deadline_ms": 20_000.0}, {"deadline_ms": 100.0}])
def test_the_array_choice_is_the_technique_policys_choice(postcopy: bool, limits: dict[str, float]) -> None:
    """Row for row, against planning.technique.choose_technique over the physics' predictions."""
    memory, dirty, bw = [512.0, 4096.0, 4096.0, 4096.0, 16384.0], [1.0, 1.0, 60.0, 300.0, 20.0], [117.0] * 5
    est = AnalyticMoveCosts().estimate(request(memory, dirty, bw, [postcopy] * 5, **limits))
    objective = Objective(max_downtime_ms=limits.get("max_downtime_ms", 300.0),
                          deadline_ms=limits.get("deadline_ms", 0.0))
    for k in range(5):
        inputs = MigrationInputs(memory[k], dirty[k], bw[k], bw[k], objective.max_downtime_ms)
        reference = choose_technique([predict_analytic(inputs, t) for t in TECHNIQUES], objective,
                                     bandwidth_mib_s=bw[k], postcopy_allowed=postcopy)
        params = est.parameters(k)
        assert params.technique is reference.parameters.technique, (k, limits)
        assert params.postcopy_after_ms == pytest.approx(reference.parameters.postcopy_after_ms)
        assert params.deadline_ms == pytest.approx(reference.parameters.deadline_ms)
        assert params.max_downtime_ms == reference.parameters.max_downtime_ms
        assert bool(est.meets_limits[k]) is not reference.reasons[0].startswith("no technique meets")
        cost = est.cost(k)
        assert cost.total_time_ms.median == pytest.approx(reference.cost.total_time_ms.median)
        assert (cost.notes == ()) is bool(est.meets_limits[k])


def test_allowed_techniques_and_estimate_rows() -> None:
    costs = AnalyticMoveCosts(TechniqueRules(techniques=(Technique.PRECOPY,)))
    est = costs.estimate(request([1024.0, 1024.0], [1.0, 500.0], [117.0, 117.0]))
    assert [TECHNIQUES[int(t)] for t in est.technique] == [Technique.PRECOPY, Technique.PRECOPY]
    assert est.meets_limits.tolist() == [True, False] and "not to converge" in est.violation(1)
    assert np.isinf(est.rank_ms[:, 1:]).all()  # the others were not allowed
    assert len(est.take([1])) == 1 and est.take([1]).technique.tolist() == [0]
    assert "precopy: total" in est.describe(0)
