"""Leave-one-day-out choice of the advisor's settings, on made-up results."""

from __future__ import annotations

from advisor.evaluation.crossval import by_setting, held_out, pooled, section
from advisor.evaluation.report import RunInfo, document
from tests.unit.evaluation.test_report import result

GOOD = {"esv": 0.5e-3, "migrations": 400, "slatah": 0.03, "energy": 99.0}  # every aim met against MFPED's
BAD = {"esv": 0.5e-3, "migrations": 400, "slatah": 0.06, "energy": 99.0}  # SLATAH twice MFPED's


def runs(day: str, hot: float | None, figures: dict[str, float]) -> dict[str, object]:
    return {**result("P", day, "advisor", **figures), "params": {} if hot is None else {"hot": hot}}


def month() -> list[dict[str, object]]:
    """Defaults meet the aims on days 0 and 1, hot 1.0 on days 1 and 2 (each misses one day)."""
    out = [result("P", f"m day {n}", "mfped") for n in range(3)]
    out += [runs("m day 0", None, GOOD), runs("m day 1", None, GOOD), runs("m day 2", None, BAD)]
    out += [runs("m day 0", 1.0, BAD), runs("m day 1", 1.0, GOOD), runs("m day 2", 1.0, GOOD)]
    return out


def test_each_day_is_judged_with_the_setting_chosen_on_the_others() -> None:
    chosen = held_out(by_setting(month())["P"])
    # holding out day 0: defaults meet 1 of days 1-2, hot 1.0 both -> hot 1.0, which misses day 0; day 2 the reverse
    assert [(dict(s), d.day, d.verdict()) for s, d in chosen] == [
        ({"hot": 1.0}, "m day 0", "no: SLATAH 2.000x"), ({}, "m day 1", "yes"), ({}, "m day 2", "no: SLATAH 2.000x")]


def test_a_setting_missing_a_day_is_no_candidate_and_one_setting_is_no_section() -> None:
    partial = [r for r in month() if not (r.get("params") and r["day"] == "m day 2")]
    assert list(by_setting(partial)["P"]) == [()]
    assert section(partial) == ""


def test_the_document_has_the_held_out_figures_and_the_main_tables_stay_on_the_defaults() -> None:
    results = month()
    text = document(results, RunInfo(command="cmd", when="t", machine="m", hours=24.0), section(results))
    held = text.split("## Settings cross-validated over days (leave one day out)")[1].split("\n## ")[0]
    assert "| m day 0 | hot 1 | 0.99 | 0.40 | 2.00 |" in held
    assert "Held out, all four aims met on 1 of 3 days" in held and "worst held-out day: **P m day " in held
    main = text.split("## P: each figure as a ratio to MFPED's")[1].split("\n## ")[0]
    assert "| m day 0 | 0.99 | 0.40 | 1.00 |" in main  # the defaults' run, not hot 1.0's
    assert "| advisor (hot 1) |" in text


def test_one_setting_for_both_traces_is_chosen_on_every_other_day_of_both() -> None:
    # trace Q: the defaults miss both days, hot 1.0 meets both; so pooled, hot 1.0 is chosen for every P day too
    other = [result("Q", f"q day {n}", "mfped") for n in range(2)]
    other += [{**runs(f"q day {n}", None, BAD), "trace": "Q"} for n in range(2)]
    other += [{**runs(f"q day {n}", 1.0, GOOD), "trace": "Q"} for n in range(2)]
    both = pooled(month() + other)
    assert [d.day for d in both[()]] == ["m day 0", "m day 1", "m day 2", "q day 0", "q day 1"]
    chosen = held_out(both)
    assert [dict(s) for s, _ in chosen] == [{"hot": 1.0}] * 5
    text = section(month() + other)
    assert "### One setting for both traces" in text and "| Q q day 1 | hot 1 |" in text
    assert "Held out: P: all four aims met on 2 of 3 days" in text and "Q: all four aims met on 2 of 2 days" in text
    assert "### P alone" in text and "### Q alone" in text
