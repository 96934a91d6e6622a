"""The physics guards bound the shipped model's probability of converging, and the notes say when they did."""

from __future__ import annotations

import pytest

from advisor.domain.model import MigrationInputs, Technique
from advisor.ml.cost import LearnedCostPredictor, load_cost_predictor
from tests.support import REPO

PRECOPY = [t for t in Technique if t.is_precopy]


@pytest.fixture(scope="module")
def predictor() -> LearnedCostPredictor:
    p = load_cost_predictor(REPO / "models" / "cost")
    assert isinstance(p, LearnedCostPredictor), p.model.fallback_reason
    return p


def big_vm(deadline_ms: float) -> MigrationInputs:
    """A 32 GiB VM at a 25 MiB/s cap: one pass over its memory takes 1,311 s."""
    return MigrationInputs(32768, 5.0, 1000, 25, 300, deadline_ms=deadline_ms, memory_configured_mib=32768,
                           memory_source="in use")


@pytest.mark.parametrize("technique", PRECOPY)
def test_a_32_gib_vm_does_not_converge_within_600_s(predictor: LearnedCostPredictor, technique: Technique) -> None:
    cost = predictor.predict(big_vm(600_000), technique)
    assert not cost.converges and cost.converge_probability == 0.0
    note = next(n for n in cost.notes if "cannot converge" in n)
    seconds = 865 if technique is Technique.PRECOPY_COMPRESS else 1311  # compression shrinks the pass by 0.66
    assert f"within 600 s: one pass over 32768 MiB at 25.0 MiB/s takes {seconds} s" in note
    assert "a physics guard: the learned model said p 0." in note  # the model alone called it likely


def test_with_room_for_the_pass_the_model_decides(predictor: LearnedCostPredictor) -> None:
    cost = predictor.predict(big_vm(3_000_000), Technique.PRECOPY)
    assert cost.converges and 0.5 < (cost.converge_probability or 0.0) < 1.0
    assert not any("physics guard" in n for n in cost.notes), cost.notes
    assert predictor.predict(big_vm(3_000_000), Technique.POSTCOPY).converge_probability == 1.0
    assert predictor.predict(big_vm(600_000), Technique.POSTCOPY).converge_probability == 0.0  # its pass: 1,311 s


def test_a_working_set_within_the_downtime_budget_converges(predictor: LearnedCostPredictor) -> None:
    # 4 MiB rewritten, 30 MiB fit 300 ms at 100 MiB/s, a 90 s deadline leaves room for the 10 s pass
    small = MigrationInputs(1024, 2.0, 100, 100, 300, working_set_mib=4.0, deadline_ms=90_000, host_profile="lab")
    for technique in PRECOPY:
        cost = predictor.predict(small, technique)
        assert cost.converges and cost.converge_probability == 1.0
        assert any("a working set of 4.0 MiB fits the 30.0 MiB" in n for n in cost.notes), cost.notes
