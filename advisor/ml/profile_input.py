"""The calibration input of `advisor profiles calibrate`: the `advisor predict cost` input columns plus what each
migration measured (`total_time_ms`, `downtime_ms`, `transferred_kib`, `outcome` = completed or aborted; downtime
empty where it did not complete). Every row is checked, and every bad row listed (row, column, why).

Every row is a migration of the profile calibrated, read as serving reads a host of that profile (`vm_memory_mib`
configured memory, `memory_used_mib` what is in use; not as `snu`, the default of a row that names none): a
`host_profile` or `source` column may only be empty or name it. A row its link could not have carried in its time
(what it sent, or the memory in use its first pass sends, beyond twice the usable bandwidth times its time), or
longer than any migration runs, is refused: fitted, it would drag the profile toward what no host does.

Only live migrations are fitted (a cold one's cost is the sum of its steps, advisor.physics.cold)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from advisor.domain.model import Technique
from advisor.domain.validation import MAX_DOWNTIME_MS
from advisor.features.inputs import InputTable, mbit_to_mib_s
from advisor.ml.batch import (
    NUMERIC_COLUMNS,
    PROFILE_COLUMNS,
    BatchInputError,
    RowProblem,
    file_lines,
    read_csv,
    validate,
)
from advisor.ml.profiles import Observed

OUTCOMES = ("completed", "aborted")
MEASURED = ("total_time_ms", "downtime_ms", "transferred_kib", "outcome")
# A day, the longest deadline a request may set (advisor.domain.validation's objective.deadline_ms): no live
# migration measured runs longer.
MAX_TIME_MS = 86_400_000.0
# How far beyond the usable bandwidth times its time a row may have sent: the stop goes uncapped, compression and
# XBZRLE send fewer bytes than the pages, and the lab's completed migrations sent at most 1.09x that, their memory
# in use (compression aside) 1.22x.
CARRIED_SLACK = 2.0


def _measured_problems(frame: pd.DataFrame) -> tuple[list[RowProblem], dict[str, np.ndarray]]:
    missing = [c for c in MEASURED if c not in frame.columns]
    if missing:
        return [RowProblem(0, f"missing column(s): {', '.join(missing)}")], {}
    outcome = frame["outcome"].astype(str).str.strip().str.lower().to_numpy()
    completed = outcome == "completed"
    problems = [RowProblem(int(i) + 1, f"outcome {frame['outcome'].iat[int(i)]!r} is not one of {', '.join(OUTCOMES)}")
                for i in np.flatnonzero(~np.isin(outcome, OUTCOMES))]
    values: dict[str, np.ndarray] = {"completed": completed}
    for column in ("total_time_ms", "downtime_ms", "transferred_kib"):
        text = frame[column].astype(str).str.strip()
        number = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
        empty = (text == "").to_numpy()
        values[column] = number
        required = completed if column != "total_time_ms" else np.ones(len(frame), dtype=np.bool_)
        for mask, why in ((empty & required, "is missing"),
                          (~empty & np.isnan(number), "is not a number"),
                          (np.isinf(number), "is not finite"),
                          ((number == 0) & required, "must be positive"),  # a negative one is said so below
                          (np.isfinite(number) & (number < 0), "is negative")):
            for i in np.flatnonzero(mask):
                problems.append(RowProblem(int(i) + 1, f"{column} {why}" + ("" if why == "is missing" else
                                                                             f" ({text.iat[int(i)]!r})")))
        if column == "downtime_ms":
            for i in np.flatnonzero(~completed & ~empty & np.isin(outcome, OUTCOMES)):
                problems.append(RowProblem(int(i) + 1, "downtime_ms must be empty where the migration was aborted"))
    return problems, values


def _cold_problems(frame: pd.DataFrame) -> list[RowProblem]:
    if "technique" not in frame.columns:
        return []
    cold = frame["technique"].astype(str).str.strip() == str(Technique.COLD)
    return [RowProblem(int(i) + 1, "technique cold: only live migrations are calibrated (a cold migration's cost is "
                                   "the sum of its steps)") for i in np.flatnonzero(cold.to_numpy())]


def _physical_problems(frame: pd.DataFrame, measured: dict[str, np.ndarray]) -> list[RowProblem]:
    """Times beyond any migration's, a stop longer than the migration, and bytes the link could not have carried in
    the time (the post-copy phase is not capped: QEMU's max-postcopy-bandwidth is unlimited by default)."""
    if not measured or any(c not in frame.columns for c in ("technique", *NUMERIC_COLUMNS)):
        return []

    def number(column: str) -> np.ndarray:
        if column not in frame.columns:
            return np.full(len(frame), np.nan)
        return pd.to_numeric(frame[column].astype(str).str.strip(), errors="coerce").to_numpy(dtype=np.float64)

    time, downtime, completed = measured["total_time_ms"], measured["downtime_ms"], measured["completed"]
    technique = frame["technique"].astype(str).str.strip().to_numpy()
    link = mbit_to_mib_s(number("available_bandwidth_mbps"))
    rate = np.where(technique == str(Technique.POSTCOPY), link, np.fmin(link, number("max_bandwidth_mib_s")))
    carried = CARRIED_SLACK * rate * time / 1000.0
    # what the first pass sends: the non-zero pages where measured, else the memory in use (compressed: fewer bytes)
    nonzero = number("nonzero_memory_mib")
    memory, memory_column = np.where(np.isnan(nonzero), number("memory_used_mib"), nonzero), np.where(
        np.isnan(nonzero), "memory_used_mib", "nonzero_memory_mib")
    memory = np.where(completed & (technique != str(Technique.PRECOPY_COMPRESS)), memory, np.nan)
    problems = []
    with np.errstate(invalid="ignore"):
        for i in np.flatnonzero(time > MAX_TIME_MS):
            problems.append(RowProblem(int(i) + 1, f"total_time_ms must be at most {MAX_TIME_MS:.0f} (a day; got "
                                                   f"{time[i]:g})"))
        for i in np.flatnonzero(downtime > MAX_DOWNTIME_MS):
            problems.append(RowProblem(int(i) + 1, f"downtime_ms must be at most {MAX_DOWNTIME_MS:.0f} (an hour; "
                                                   f"got {downtime[i]:g})"))
        for i in np.flatnonzero((downtime > time) & (time <= MAX_TIME_MS)):
            problems.append(RowProblem(int(i) + 1, f"downtime_ms {downtime[i]:g} is longer than the whole migration "
                                                   f"(total_time_ms {time[i]:g})"))
        within = time <= MAX_TIME_MS
        for column, sent in (("transferred_kib", measured["transferred_kib"] / 1024.0), (None, memory)):
            for i in np.flatnonzero(within & (sent > carried)):
                what = (f"transferred_kib {sent[i] * 1024:g}" if column else
                        f"{memory_column[i]} {sent[i]:g} (what the first pass sends)")
                problems.append(RowProblem(int(i) + 1, f"{what} cannot pass {rate[i]:g} MiB/s in total_time_ms "
                                                       f"{time[i]:g}: at most {carried[i]:g} MiB ({CARRIED_SLACK:g}x "
                                                       "the usable bandwidth times the time)"))
    return problems


def _profile_problems(frame: pd.DataFrame, name: str) -> list[RowProblem]:
    problems = []
    for column in PROFILE_COLUMNS:
        if column not in frame.columns:
            continue
        named = frame[column].astype(str).str.strip()
        for i in np.flatnonzero(((named != "") & (named.str.lower() != name)).to_numpy()):
            problems.append(RowProblem(int(i) + 1, f"{column} {str(named.iat[int(i)])[:40]!r} is not {name}: every row "
                                                   f"calibrates {name} (empty or {name})"))
    return problems


def read_calibration(path: Path, name: str) -> tuple[InputTable, Observed]:
    """The migrations of profile `name` in a CSV file; raises BatchInputError listing every bad row."""
    frame = read_csv(path)
    problems: list[RowProblem] = []
    values: dict[str, np.ndarray] = {}
    try:
        values = validate(frame, path)
    except BatchInputError as error:
        problems.extend(error.problems)
    measured_problems, measured = _measured_problems(frame)
    unreadable = {p.row for p in measured_problems}  # judged against the physics only once they read as numbers
    problems += (measured_problems + _cold_problems(frame) + _profile_problems(frame, name)
                 + [p for p in _physical_problems(frame, measured) if p.row not in unreadable])
    if not problems and len(frame) == 0:
        problems.append(RowProblem(0, "no migrations"))
    elif not problems and not measured["completed"].any():
        problems.append(RowProblem(0, f"no completed migration among the {len(frame)}: nothing to fit on (an "
                                      "aborted migration's time is when it was stopped, not what it cost)"))
    if problems:
        problems.sort(key=lambda p: p.row)
        raise BatchInputError(path, problems, file_lines(frame))
    validated = frame.assign(source=name)
    for column in NUMERIC_COLUMNS:
        validated[column] = values[column]
    table = InputTable.from_frame(validated)
    return table, Observed(measured["total_time_ms"], measured["downtime_ms"], measured["transferred_kib"] / 1024.0,
                           measured["completed"])
