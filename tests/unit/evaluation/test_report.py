"""The evaluation document from made-up results: ratios to MFPED, the aims' verdict per day, the worst day."""

from __future__ import annotations

import math

import pytest

from advisor.evaluation.report import Day, RunInfo, document, pair, ratio, summary_table, worst


def result(trace: str, day: str, policy: str, *, energy: float = 100.0, migrations: int = 1000,
           slatah: float = 0.03, pdm: float = 0.0003, esv: float = 1e-3) -> dict[str, object]:
    return {"trace": trace, "day": day, "policy": policy, "energy_kwh": energy, "migrations": migrations,
            "slatah": slatah, "pdm": pdm, "esv": esv, "mean_active_hosts": 30.0, "wall_time_s": 4.0, "hosts": 800,
            "hours": 24.0, "cpu_s": 3.0, "load_1min": 2.0,
            "moves": {"balance": 10, "consolidate": 20} if policy == "advisor" else {}}


MFPED = {"energy": 100.0, "migrations": 1000, "slatah": 0.03, "esv": 1e-3}


def test_ratios_treat_zero_over_zero_as_equal() -> None:
    assert ratio(2.0, 4.0) == 0.5 and ratio(0.0, 0.0) == 1.0 and math.isinf(ratio(1.0, 0.0))


@pytest.mark.parametrize(("advisor", "verdict"), [
    ({"esv": 0.5e-3, "migrations": 400, "slatah": 0.03, "energy": 99.0}, "yes"),
    ({"esv": 1e-3, "migrations": 400, "slatah": 0.03, "energy": 99.0}, "no: ESV 1.000x"),  # not strictly below
    ({"esv": 0.5e-3, "migrations": 501, "slatah": 0.02, "energy": 99.0}, "no: migrations 0.501x"),
    ({"esv": 0.5e-3, "migrations": 400, "slatah": 0.06, "energy": 101.0}, "no: SLATAH 2.000x, energy 1.010x"),
])
def test_each_aim_is_judged_against_mfped_on_the_day(advisor: dict[str, float], verdict: str) -> None:
    days = pair([result("PlanetLab", "d", "advisor", **advisor), result("PlanetLab", "d", "mfped", **MFPED)])
    assert [d.verdict() for d in days["PlanetLab"]] == [verdict]


def test_days_sort_by_number_and_a_day_without_mfped_is_left_out() -> None:
    results = [result("Bitbrains", f"m day {n}", p) for n in (10, 2, 1) for p in ("advisor", "mfped")]
    results.append(result("Bitbrains", "m day 3", "advisor"))
    assert [d.day for d in pair(results)["Bitbrains"]] == ["m day 1", "m day 2", "m day 10"]


def test_the_worst_day_is_the_furthest_from_an_aim_and_says_why() -> None:
    days = [Day("B", "m day 0", result("B", "m day 0", "advisor", slatah=0.09, esv=0.9e-3, migrations=100),
                result("B", "m day 0", "mfped")),
            Day("B", "m day 1", result("B", "m day 1", "advisor", migrations=800, esv=0.5e-3),
                result("B", "m day 1", "mfped"))]
    text = worst(days)
    assert text.startswith("**B m day 0**") and "SLATAH 3.00x MFPED's" in text and "9.00%" in text
    summary = summary_table({"B": days}).splitlines()[-1]
    assert summary == "| B | 2 | 2 | 0.70 | 1 | 2 | 1 | 0 |"


def test_the_document_has_a_section_per_trace_and_refuses_results_without_pairs() -> None:
    results = [result(t, "d", p, esv=0.5e-3 if p == "advisor" else 1e-3, migrations=100 if p == "advisor" else
                      1000) for t in ("PlanetLab", "Bitbrains") for p in ("advisor", "mfped")]
    info = RunInfo("cmd", "2026-12-06", "2 cores", 24.0)
    text = document(results, info)
    for trace in ("PlanetLab", "Bitbrains"):
        assert f"## {trace}: each figure as a ratio to MFPED's" in text
        assert "All four aims met on 1 of 1 days" in text
    assert "each run: 2.0 to 2.0, median 2.0" in text
    assert "The 4 simulations took 0.3 min of wall time in all, 0.2 min of CPU." in text
    with pytest.raises(ValueError, match="no day"):
        document(results[:1], info)


def test_the_plans_predictions_stand_beside_what_was_measured() -> None:
    ours = {**result("B", "m day 0", "advisor"), "migration_s": 400.0, "predicted": {
        "relieved_hosts": 3, "predicted_over_before_s": 900.0, "predicted_over_after_s": 300.0,
        "predicted_saved_s": 600.0, "measured_before_s": 450.0, "measured_after_s": 500.0,
        "predicted_migration_s": 1200.0, "balance_loss_mips_s": 300.0, "consolidate_loss_mips_s": 100.0}}
    results = [ours, result("B", "m day 0", "mfped"), result("B", "m day 1", "advisor"),
               result("B", "m day 1", "mfped")]
    text = document(results, RunInfo(command="cmd", when="today", machine="m", hours=24.0))
    assert "| m day 0 | 3 | 900 -> 300 | 600 | 450 -> 500 | 1,200 | 400 | 3.00 | 75% |" in text
    assert "| m day 1 |" not in text.split("## What the plans predicted")[1].split("## Figures per run")[0]
    assert "## What the plans predicted" not in document([result("B", "d", p) for p in ("advisor", "mfped")],
                                                         RunInfo(command="cmd", when="t", machine="m", hours=24.0))
