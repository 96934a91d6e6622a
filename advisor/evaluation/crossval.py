"""Settings of the `advisor` policy chosen by leave-one-day-out cross-validation, and the held-out days' figures.

Each advisor result may carry `params`: the `AdvisorParams` fields it overrides (none: the defaults). For every
day of a trace, the setting chosen is the one that does best on the trace's OTHER days (the most days meeting all
four aims, then the smallest worst excess over an aim, then the smallest median ESV ratio); that setting's figures
on the held-out day, which took no part in choosing it, are what the section reports. A setting is a candidate
only where it was run on every day of the trace. The same is done with the traces pooled (`pooled`): each day of
either trace held out in turn, one setting chosen on every other day of both, as the settings must serve every
trace. Pure: no simulation runs here.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

from advisor.evaluation.report import ADVISOR, BASELINE, RATIOS, Day, Result, fmt, pair, worst

Setting = tuple[tuple[str, float], ...]


def setting_of(r: Result) -> Setting:
    params = r.get("params") or {}
    assert isinstance(params, Mapping)
    return tuple(sorted((str(k), float(v)) for k, v in params.items()))


def describe(s: Setting) -> str:
    return ", ".join(f"{k} {v:g}" for k, v in s) or "defaults"


def by_setting(results: Sequence[Result]) -> dict[str, dict[Setting, list[Day]]]:
    """Per trace and setting, its days paired with MFPED's; a setting missing a day the others have is left out."""
    baselines = [r for r in results if r["policy"] == BASELINE]
    table: dict[str, dict[Setting, list[Day]]] = {}
    for s in sorted({setting_of(r) for r in results if r["policy"] == ADVISOR}):
        mine = [r for r in results if r["policy"] == ADVISOR and setting_of(r) == s]
        for trace, ds in pair(mine + baselines).items():
            table.setdefault(trace, {})[s] = ds
    out = {}
    for trace, settings in table.items():
        every = set().union(*({d.day for d in ds} for ds in settings.values()))
        out[trace] = {s: ds for s, ds in settings.items() if {d.day for d in ds} == every}
    return out


def _score(days: Sequence[Day]) -> tuple[int, float, float]:
    """Lower is better: (- days meeting every aim, the worst excess, the median ESV ratio)."""
    return (-sum(1 for d in days if not d.misses()), max(d.excess() for d in days),
            statistics.median(d.ratio("esv") for d in days))


def held_out(days_by_setting: Mapping[Setting, Sequence[Day]]) -> list[tuple[Setting, Day]]:
    """Per day (in order): the setting chosen on the other days, and its figures on this one."""
    settings = sorted(days_by_setting)
    names = [d.day for d in days_by_setting[settings[0]]]
    out = []
    for k, name in enumerate(names):
        def rest(s: Setting, k: int = k) -> list[Day]:
            return [d for j, d in enumerate(days_by_setting[s]) if j != k]
        chosen = min(settings, key=lambda s: (_score(rest(s)) if len(names) > 1 else (0, 0.0, 0.0), s))
        day = days_by_setting[chosen][k]
        assert day.day == name
        out.append((chosen, day))
    return out


def pooled(results: Sequence[Result]) -> dict[Setting, list[Day]]:
    """Per setting run on every day of every trace, all those days (trace after trace): one setting for both."""
    table = by_setting(results)
    if len(table) < 2:
        return {}
    common = set.intersection(*(set(settings) for settings in table.values()))
    return {s: [d for settings in table.values() for d in settings[s]] for s in sorted(common)}


def _held_out_table(chosen: Sequence[tuple[Setting, Day]], label: bool) -> list[str]:
    rows = ["| held-out day | setting chosen on the other days | " + " | ".join(
        ("energy", "migrations", "SLATAH", "PDM", "ESV")) + " | all aims met |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for s, d in chosen:
        rows.append(f"| {d.trace + ' ' if label else ''}{d.day} | {describe(s)} | "
                    + " | ".join(fmt(d.ratio(m)) for m in RATIOS) + f" | {d.verdict()} |")
    return rows


def _met(days: Sequence[Day]) -> str:
    met = sum(1 for d in days if not d.misses())
    return (f"all four aims met on {met} of {len(days)} days, median ESV ratio "
            f"{fmt(statistics.median(d.ratio('esv') for d in days))}")


def section(results: Sequence[Result]) -> str:
    """The document's cross-validation sections: one setting for every trace (each day held out in turn, the
    setting chosen on every other day of both traces), then per trace ('' where fewer than two settings ran)."""
    parts = []
    both = pooled(results)
    if len(both) >= 2:
        chosen = held_out(both)
        per_trace = "; ".join(f"{trace}: {_met([d for _, d in chosen if d.trace == trace])}"
                              for trace in dict.fromkeys(d.trace for _, d in chosen))
        tried = "; ".join(f"{describe(s)}: all aims on {sum(1 for d in ds if not d.misses())} of {len(ds)} days"
                          for s, ds in both.items())
        parts.append(f"### One setting for both traces\n\nSettings tried on every day of both traces ({tried}). "
                     "Each day is held out in turn and the setting is chosen on all the other days of both traces."
                     "\n\n" + "\n".join(_held_out_table(chosen, label=True))
                     + f"\n\nHeld out: {per_trace}; worst held-out day: {worst([d for _, d in chosen])}")
    for trace, settings in by_setting(results).items():
        if len(settings) < 2:
            continue
        chosen = held_out(settings)
        rows = _held_out_table(chosen, label=False)
        days = [d for _, d in chosen]
        met = sum(1 for d in days if not d.misses())
        median = statistics.median(d.ratio("esv") for d in days)
        tried = "; ".join(f"{describe(s)}: all aims on {sum(1 for d in ds if not d.misses())} of {len(ds)} days"
                          for s, ds in settings.items())
        parts.append(f"### {trace} alone\n\nSettings tried on every day ({tried}).\n\n" + "\n".join(rows)
                     + f"\n\nHeld out, all four aims met on {met} of {len(days)} days, median ESV ratio "
                     f"{fmt(median)}; worst held-out day: {worst(days)}")
    return "\n\n".join(parts)
