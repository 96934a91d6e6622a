"""What the command line prints: exact wording, tables that fit the terminal."""

from __future__ import annotations

import pytest

from advisor.api.v1 import advisor_pb2 as pb
from advisor.cli.render import decision_line, model_label, moves_table, recommendations_table, render_recommendation
from advisor.tables import ELLIPSIS, table


def _move(vm: str, model: pb.ModelInfo) -> pb.Move:
    cost = pb.MigrationCost(technique=pb.TECHNIQUE_PRECOPY, converges=True, model=model)
    return pb.Move(vm_id=vm, source_host_id="a", target_host_id="b", predicted_cost=cost,
                   reasons=["target b: the best of 1 eligible host"])


def test_a_model_is_named_without_empty_parts() -> None:
    whole = pb.ModelInfo(name="lightgbm-cost", version="2.1.0", interval_kind="p10-p90 conformal")
    assert model_label(whole) == "lightgbm-cost 2.1.0, p10-p90 conformal"
    assert model_label(pb.ModelInfo(name="lightgbm-cost 2.0.0")) == "lightgbm-cost 2.0.0"
    out = render_recommendation(pb.Recommendation(id="r1", goal="drain:a", moves=[_move("v", pb.ModelInfo(
        name="lightgbm-cost 2.0.0"))]))
    assert "converges yes (lightgbm-cost 2.0.0)" in out and " , )" not in out


def test_moves_are_numbered_from_1_and_a_dry_run_has_no_state() -> None:
    model = pb.ModelInfo(name="m", version="1")
    rec = pb.Recommendation(goal="drain:a", state=pb.RECOMMENDATION_STATE_PROPOSED,
                            moves=[_move("v1", model), _move("v2", model)])
    out = render_recommendation(rec)
    assert out.startswith("Recommendation (drain:a), dry run: not stored, nothing to approve, priority")
    assert "proposed" not in out.splitlines()[0]
    assert "Move 1: v1" in out and "Move 2: v2" in out and "Move 0" not in out
    assert [line.split()[0] for line in moves_table(rec).splitlines()[2:]] == ["1", "2"]


def test_a_decision_is_one_line() -> None:
    rec = pb.Recommendation(id="r1", goal="target:v1", state=pb.RECOMMENDATION_STATE_REJECTED, decided_by="sre-1",
                            decision_reason="change freeze", moves=[_move("v1", pb.ModelInfo(name="m"))])
    assert decision_line(rec) == "recommendation r1 (target:v1) rejected by sre-1: change freeze"


def test_a_table_fits_its_width_by_cutting_the_free_text_column_only() -> None:
    rows = [["4f1c9a2b7d3e", "proposed", "Drain hv-b: " + "a long summary " * 10], ["short-id", "approved", "ok"]]
    out = table(["id", "state", "summary"], rows, fit=2, width=50)
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 50
    assert lines[2].startswith("4f1c9a2b7d3e  proposed  Drain hv-b: a") and lines[2].endswith(ELLIPSIS)
    assert lines[3].endswith("ok")
    assert table(["id", "state", "summary"], rows, fit=2) == table(["id", "state", "summary"], rows, width=None)


def test_a_table_follows_the_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    recs = [pb.Recommendation(id=f"{i:012x}", goal="rebalance", summary="Balance: " + "word " * 60)
            for i in range(3)]
    monkeypatch.delenv("COLUMNS", raising=False)
    assert len(recommendations_table(recs).splitlines()[2]) > 300  # into a pipe: whole lines
    monkeypatch.setenv("COLUMNS", "120")
    lines = recommendations_table(recs).splitlines()
    assert max(len(line) for line in lines) <= 120 and all(f"{i:012x}" in lines[2 + i] for i in range(3))
