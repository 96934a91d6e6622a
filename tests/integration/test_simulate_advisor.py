"""benchmarks/simulate_advisor.py, short: one PlanetLab day and two Bitbrains days cut to their first hour, run for
real, the advisor also with `hot` 1.0 (--grid); the document it writes has a table per trace and day whose ratios are
those of the saved results (the default settings'), and the held-out figures of the leave-one-day-out choice."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

pytestmark = pytest.mark.integration

SHARED = REPO.parent / "shared" / "data"
DAYS = {"PlanetLab": ["20110303"], "Bitbrains": ["rnd-2013-7 day 0", "rnd-2013-7 day 1"]}


@pytest.mark.skipif(not (SHARED / "bitbrains").is_dir(), reason="the shared data is beside the repository")
def test_a_short_run_writes_a_table_per_trace_and_day_with_the_ratios_of_its_results(tmp_path: Path) -> None:
    doc, raw = tmp_path / "doc.md", tmp_path / "results.jsonl"
    run = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "simulate_advisor.py"), "--planetlab-days", "20110303",
         "--bitbrains-days", "0,1", "--hours", "1", "--output", str(doc), "--results", str(raw),
         "--grid", "hot=1.0,1.1"],
        capture_output=True, text=True, timeout=280, check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    progress = [line for line in run.stdout.splitlines() if line.startswith("[")]
    assert [line[:7] for line in progress] == [f"[{k:3}/9]" for k in range(1, 10)]  # one line per run

    text = doc.read_text()
    results = [json.loads(line) for line in raw.read_text().splitlines()]
    assert sorted((r["trace"], r["day"], r["policy"], r["params"].get("hot", 0)) for r in results) == sorted(
        (trace, day, policy, hot) for trace, days in DAYS.items() for day in days
        for policy, hot in (("advisor", 0), ("advisor", 1.1), ("mfped", 0)))
    assert "The 9 simulations took" in text and "first 1 h: a short version" in text
    by = {(r["trace"], r["day"], r["policy"]): r for r in results if not r["params"]}
    for r in results:  # the policy's share of the CPU, and a digest of the moves that is empty only without any
        assert 0 < r["policy_cpu_s"] < r["cpu_s"]
        assert (r["migrations_sha256"] == hashlib.sha256().hexdigest()) == (r["migrations"] == 0)
    for trace, days in DAYS.items():
        for day in days:
            assert by[(trace, day, "advisor")]["migrations_sha256"] != by[(trace, day, "mfped")]["migrations_sha256"]
    for trace, days in DAYS.items():
        section = text.split(f"## {trace}: each figure as a ratio to MFPED's")[1].split("\n## ")[0]
        rows = [line for line in section.splitlines()
                if line.startswith("| ") and not line.startswith(("| day", "| ---"))]
        assert [row.split(" | ")[0][2:] for row in rows] == days
        for day, row in zip(days, rows, strict=True):
            cells = row.split(" | ")
            ours, theirs = by[(trace, day, "advisor")], by[(trace, day, "mfped")]
            for cell, metric in zip(cells[1:6], ("energy_kwh", "migrations", "slatah", "pdm", "esv"), strict=True):
                expected = ours[metric] / theirs[metric] if theirs[metric] else (1.0 if not ours[metric] else None)
                assert cell == ("inf" if expected is None else f"{expected:.2f}"), (trace, day, metric)
            met = ours["esv"] < theirs["esv"] and ours["slatah"] <= theirs["slatah"] and \
                ours["energy_kwh"] <= theirs["energy_kwh"] and ours["migrations"] <= theirs["migrations"] / 2
            assert cells[6].rstrip(" |").startswith("yes" if met else "no: ")
        assert re.search(rf"All four aims met on \d of {len(days)} days; worst: ", section)
    worst = re.search(r"Worst day \(.*?\): (.*)", text)
    assert worst and any(day in worst.group(1) for days in DAYS.values() for day in days)
    walls = text.split("## Wall time of a simulated day")[1].split("\n## ")[0]
    rows = [line for line in walls.splitlines() if line.startswith(("| PlanetLab", "| Bitbrains"))]
    assert len(rows) == 6  # hot 1.1 apart
    predicted = text.split("## What the plans predicted, beside what the simulator measured")[1].split("\n## ")[0]
    for trace, days in DAYS.items():
        table = predicted.split(f"### {trace}")[1].split("###")[0]
        for day in days:
            ours = by[(trace, day, "advisor")]
            row = next(line for line in table.splitlines() if line.startswith(f"| {day} |"))
            assert f"| {ours['predicted']['predicted_migration_s']:,.0f} | {ours['migration_s']:,.0f} |" in row
    held = text.split("## Settings cross-validated over days (leave one day out)")[1].split("\n## ")[0]
    for trace, days in DAYS.items():
        table = held.split(f"### {trace}")[1].split("###")[0]
        assert [line.split(" | ")[0][2:] for line in table.splitlines() if line.startswith("| ")][2:] == days
        assert "worst held-out day: **" in table
