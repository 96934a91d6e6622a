"""Batch cost prediction over a CSV: `advisor predict cost --input IN.csv --output OUT.csv`.

Input columns (units of the shared SNU data): technique, vm_memory_mib, dirty_rate_pages_per_s,
available_bandwidth_mbps, max_bandwidth_mib_s; optional, each as advisor.features.dataset.OPTIONAL_INPUTS says:
host_profile (alias source: `snu`, `lab`, or a profile calibrated by `advisor profiles calibrate`; another name is
served as uncalibrated), memory_used_mib, max_downtime_ms, deadline_ms, and the measured working set
(working_set_mib, dirty_rate_2s_pages_per_s, dirty_rate_4s_pages_per_s), the measured non-zero memory
(nonzero_memory_mib) and the guest's vCPU utilisation (vcpu_utilization, 0-1: busy while the dirty rate reads ~0
makes the reading blind, and the rate unknown), the hosts' runnable threads per CPU (host_load_per_cpu), and the
VM's disks (disk_mib: MiB its disks hold; disk_size_mib: their size, the most the guest can rewrite, at least
disk_mib, default disk_mib; disk_shared: true, the default, or false when they are local and copied with the VM;
disk_write_rate_mib_s: what the guest writes to them, empty when not measured: advisor.physics.disk). A row of
technique `cold` is priced by cold migration's steps (advisor.physics.cold: shut down, within shutdown_timeout_ms,
default 60000, then forced off; its local disks copied while it is off; start), whatever model serves the live
techniques. An empty cell of an optional column is missing for that row, and the output's `assumed` column says what
was taken instead. Any other column passes through unchanged (read and written as text). Every row is checked before
anything is predicted; a bad row raises BatchInputError listing each bad row by its data-row number (1 = the first
row after the header, blank lines not counted), the reason and its line in the file, and no output file is written;
so does a file without rows, a header naming a column twice, or a row with more or fewer fields than the header. The
output is written to a temporary file beside the target and renamed into place only when complete.
"""

from __future__ import annotations

import contextlib
import csv
import os
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from advisor.domain import validation
from advisor.domain.errors import InvalidArgument
from advisor.domain.model import MIB, PAGE_SIZE_BYTES, MigrationCost, MigrationInputs, Technique
from advisor.features.inputs import INPUT_COLUMNS, InputTable
from advisor.ml.cost_features import TECHNIQUE_CODE
from advisor.ml.predictor import CostPredictor, predict_with_disks
from advisor.physics import cold_cost

NUMERIC_COLUMNS = INPUT_COLUMNS[1:]
# Every numeric column's range: what the gRPC API accepts of the same quantity (advisor.domain.validation), in the
# column's unit, so that a file is held to what a request is, and no value overflows the physics to inf.
PAGES_PER_MIB = MIB / PAGE_SIZE_BYTES
MBIT_PER_MIB = MIB * 8 / 1e6
REQUIRED_RANGE = {"vm_memory_mib": (1.0, validation.MAX_VM_MEMORY_MIB),
                  "dirty_rate_pages_per_s": (0.0, validation.MAX_DIRTY_RATE_MIB_S * PAGES_PER_MIB),
                  "available_bandwidth_mbps": (validation.MIN_BANDWIDTH_MIB_S * MBIT_PER_MIB,
                                               validation.MAX_BANDWIDTH_MIB_S * MBIT_PER_MIB),
                  "max_bandwidth_mib_s": (validation.MIN_BANDWIDTH_MIB_S, validation.MAX_BANDWIDTH_MIB_S)}
# Optional numeric columns and the largest value each may take; an empty cell is a missing value. A shutdown
# timeout is a cold move's downtime, bounded as any.
OPTIONAL_NUMERIC = {"memory_used_mib": validation.MAX_VM_MEMORY_MIB, "max_downtime_ms": validation.MAX_DOWNTIME_MS,
                    "deadline_ms": validation.MAX_DEADLINE_MS, "working_set_mib": validation.MAX_VM_MEMORY_MIB,
                    "dirty_rate_2s_pages_per_s": validation.MAX_DIRTY_RATE_MIB_S * PAGES_PER_MIB,
                    "dirty_rate_4s_pages_per_s": validation.MAX_DIRTY_RATE_MIB_S * PAGES_PER_MIB,
                    "nonzero_memory_mib": validation.MAX_VM_MEMORY_MIB, "vcpu_utilization": 1.0,
                    # the guest's pages and QEMU's own: above the VM's memory by QEMU's
                    "resident_memory_mib": validation.MAX_RESIDENT_MEMORY_MIB,
                    "host_load_per_cpu": validation.MAX_LOAD_PER_CPU,
                    "disk_mib": validation.MAX_DISK_MIB, "disk_size_mib": validation.MAX_DISK_MIB,
                    "disk_write_rate_mib_s": validation.MAX_DISK_WRITE_RATE_MIB_S,
                    "shutdown_timeout_ms": validation.MAX_DOWNTIME_MS}
# What a cold row gives the guest to shut down when the row does not say (TechniqueRules' default).
SHUTDOWN_TIMEOUT_MS = 60_000.0
TECHNIQUE_NAMES = (*TECHNIQUE_CODE, str(Technique.COLD))
# disk_shared's words, case aside; empty is true (a shared disk: nothing copied).
SHARED_WORDS = {"": True, "true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
MAX_SOURCE_CHARS = 64
# The host profile of a row: `host_profile`, or its alias `source` (both given must agree).
PROFILE_COLUMNS = ("host_profile", "source")
OUTPUT_TARGETS = (
    ("predicted_total_time_ms", "total_time_ms", 1.0),
    ("predicted_downtime_ms", "downtime_ms", 1.0),
    ("predicted_transferred_kib", "transferred_mib", 1024.0),
)
MAX_LISTED_PROBLEMS = 50


@dataclass(frozen=True)
class RowProblem:
    row: int  # 1-based data row (header excluded); 0 for a problem with the file as a whole
    reason: str


class BatchInputError(InvalidArgument):
    """The input CSV has bad rows or lacks columns. `problems` lists them all; the message the first 50, each with its
    line in the file where `lines` (`file_lines`) says. The file's path is the error's field."""

    def __init__(self, path: Path, problems: list[RowProblem], lines: np.ndarray | None = None) -> None:
        def where(row: int) -> str:
            return f" [line {int(lines[row - 1])}]" if lines is not None and 0 < row <= len(lines) else ""

        listed = [(f"row {p.row}: " if p.row else "") + p.reason + where(p.row)
                  for p in problems[:MAX_LISTED_PROBLEMS]]
        more = len(problems) - len(listed)
        rows = sorted({p.row for p in problems if p.row})
        head = (
            f"{len(rows)} bad row(s) (rows count data rows from 1, the header and blank lines not included"
            + ("; [line N] is the row's line in the file)" if lines is not None else ")")
            if rows
            else "unusable input"
        )
        tail = [f"... and {more} more"] if more > 0 else []
        super().__init__(str(path), head + "\n  " + "\n  ".join([*listed, *tail]))
        self.path = path
        self.problems = problems
        # the message's lines, for the command line to show each escaped on its own
        self.message_lines = (f"{path}: {head}", *(f"  {line}" for line in [*listed, *tail]))


def file_lines(frame: pd.DataFrame) -> np.ndarray:
    """Each data row's line in its file, as `read_csv` found it; else as if the header were line 1 and no line
    blank."""
    lines = frame.attrs.get("lines")
    return np.asarray(lines) if lines is not None else np.arange(2, len(frame) + 2)


def read_csv(input_path: Path) -> pd.DataFrame:
    """Every row of a CSV file as text (what passes through is written back as it was read), and each data row's
    line in the file (`file_lines`: a blank line is skipped, a quoted field may span lines). A header naming a
    column twice, or a row with more or fewer fields than the header, is refused: pandas would read the second
    column as `NAME.1`, or a row's first field as the table's index, and predict from the wrong cells."""
    header: list[str] | None = None
    records: list[list[str]] = []
    lines: list[int] = []
    problems: list[RowProblem] = []
    try:
        with open(input_path, encoding="utf-8-sig", newline="") as f:
            reader = csv.reader(f)
            start = 1
            for record in reader:
                blank = not record or (len(record) == 1 and not record[0].strip())
                if header is None:
                    header = None if blank else record
                elif not blank:
                    if len(record) != len(header):
                        problems.append(RowProblem(len(records) + 1, f"{len(record)} fields where the header has "
                                                                     f"{len(header)}"))
                    records.append(record)
                    lines.append(start)
                start = reader.line_num + 1
    except FileNotFoundError:
        raise BatchInputError(input_path, [RowProblem(0, "file not found")]) from None
    except csv.Error as e:
        raise BatchInputError(input_path, [RowProblem(0, f"cannot read CSV: {e} (line {reader.line_num})")]
                              ) from None
    except (UnicodeDecodeError, OSError) as e:
        raise BatchInputError(input_path, [RowProblem(0, f"cannot read CSV: {e}")]) from None
    if header is None:
        raise BatchInputError(input_path, [RowProblem(0, "the file is empty: no header, no rows")])
    twice = {name: [k + 1 for k, c in enumerate(header) if c == name] for name in header if header.count(name) > 1}
    if twice:
        raise BatchInputError(input_path, [RowProblem(0, f"the header names column {name!r} more than once "
                                                         f"(columns {', '.join(map(str, at))})")
                                           for name, at in twice.items()])
    if problems:
        raise BatchInputError(input_path, problems, np.array(lines))
    frame = pd.DataFrame(records, columns=header, dtype=str)
    frame.attrs["lines"] = np.array(lines, dtype=np.int64)
    return frame


def validate(frame: pd.DataFrame, input_path: Path) -> dict[str, np.ndarray]:
    """Check every row; return the numeric input columns as float arrays, or raise BatchInputError."""
    missing = [c for c in INPUT_COLUMNS if c not in frame.columns]
    if missing:
        raise BatchInputError(input_path, [RowProblem(0, f"missing column(s): {', '.join(missing)}")])
    problems: list[RowProblem] = []
    values: dict[str, np.ndarray] = {}
    for column in NUMERIC_COLUMNS:
        text = frame[column].astype(str).str.strip()
        number = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
        values[column] = number
        empty = (text == "").to_numpy()
        not_number = np.isnan(number) & ~empty
        infinite = np.isinf(number)
        negative = np.isfinite(number) & (number < 0)
        low, high = REQUIRED_RANGE[column]
        out_of_range = np.isfinite(number) & ~negative & ((number < low) | (number > high))
        for mask, why in (
            (empty, "is missing"),
            (not_number, "is not a number"),
            (infinite, "is not finite"),
            (negative, "is negative"),
            (out_of_range, f"must be in [{low:.10g}, {high:.10g}]"),
        ):
            for i in np.flatnonzero(mask):
                shown = f" ({text.iat[int(i)]!r})" if why not in ("is missing",) else ""
                problems.append(RowProblem(int(i) + 1, f"{column} {why}{shown}"))
    for column, high in OPTIONAL_NUMERIC.items():
        if column not in frame.columns:
            continue
        text = frame[column].astype(str).str.strip()
        number = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
        given = (text != "").to_numpy()
        out_of_range = given & np.isfinite(number) & ((number < 0) | (number > high))
        # no allowed downtime, or no memory in use at all, is no migration the model can say anything of
        zero = given & (number == 0) & (column in ("max_downtime_ms", "memory_used_mib"))
        for mask, why in ((given & np.isnan(number), "is not a number"), (np.isinf(number), "is not finite"),
                          (out_of_range, f"must be in [0, {high:.10g}]"),
                          (zero, "must be positive")):
            for i in np.flatnonzero(mask):
                problems.append(RowProblem(int(i) + 1, f"{column} {why} ({text.iat[int(i)]!r})"))
    problems += _above_the_vm(frame, values["vm_memory_mib"])
    for column in PROFILE_COLUMNS:
        if column not in frame.columns:
            continue
        source = frame[column].astype(str)
        bad_source = source.str.len().gt(MAX_SOURCE_CHARS) | source.str.contains(r"[\x00-\x1f\x7f]", regex=True)
        for i in np.flatnonzero(bad_source.to_numpy()):
            problems.append(RowProblem(int(i) + 1, f"{column} must be at most {MAX_SOURCE_CHARS} printable characters"))
    if all(c in frame.columns for c in PROFILE_COLUMNS):
        named = [frame[c].astype(str).str.strip().str.lower() for c in PROFILE_COLUMNS]
        differ = (named[0] != "") & (named[1] != "") & (named[0] != named[1])
        for i in np.flatnonzero(differ.to_numpy()):
            problems.append(RowProblem(int(i) + 1, f"host_profile {named[0].iat[int(i)]!r} and its alias source "
                                                   f"{named[1].iat[int(i)]!r} differ"))
    problems += _disk_problems(frame)
    technique = frame["technique"].astype(str).str.strip()
    unknown = ~technique.isin(list(TECHNIQUE_NAMES)).to_numpy()
    for i in np.flatnonzero(unknown):
        problems.append(
            RowProblem(int(i) + 1, f"unknown technique {technique.iat[int(i)]!r} (one of {', '.join(TECHNIQUE_NAMES)})")
        )
    if problems:
        problems.sort(key=lambda p: p.row)
        raise BatchInputError(input_path, problems, file_lines(frame))
    return values


def _above_the_vm(frame: pd.DataFrame, vm_memory_mib: np.ndarray) -> list[RowProblem]:
    """A VM uses, rewrites or touches no more memory than it has: PushSamples refuses a sample saying otherwise
    (values out of range are said so already)."""
    problems = []
    for column in ("memory_used_mib", "working_set_mib", "nonzero_memory_mib"):
        if column not in frame.columns:
            continue
        text = frame[column].astype(str).str.strip()
        number = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
        above = (number > vm_memory_mib) & (number <= OPTIONAL_NUMERIC[column])
        for i in np.flatnonzero(above).tolist():
            problems.append(RowProblem(i + 1, f"{column} ({text.iat[i]!r}) exceeds vm_memory_mib "
                                              f"({frame['vm_memory_mib'].astype(str).str.strip().iat[i]!r})"))
    return problems


def _disk_problems(frame: pd.DataFrame) -> list[RowProblem]:
    """disk_shared's words, a local disk without its MiB, and a size below the MiB it holds (number checks are the
    optional columns')."""
    problems = []

    def text(column: str) -> pd.Series:
        return frame[column].astype(str).str.strip() if column in frame.columns else pd.Series([""] * len(frame))

    disk, size = text("disk_mib"), text("disk_size_mib")
    if "disk_shared" in frame.columns:
        for i, word in enumerate(text("disk_shared").str.lower().tolist()):
            if word not in SHARED_WORDS:
                problems.append(RowProblem(i + 1, f"disk_shared must be true or false (got {word[:20]!r})"))
            elif not SHARED_WORDS[word] and disk.iat[i] == "":
                problems.append(RowProblem(i + 1, "disk_shared is false but disk_mib is missing: what is to be "
                                                  "copied?"))
    held = pd.to_numeric(disk, errors="coerce").to_numpy(dtype=np.float64)
    most = pd.to_numeric(size, errors="coerce").to_numpy(dtype=np.float64)
    for k in np.flatnonzero((size != "").to_numpy()).tolist():
        if disk.iat[k] == "":
            problems.append(RowProblem(k + 1, "disk_size_mib without disk_mib: how much of it is in use?"))
        elif most[k] < held[k]:
            problems.append(RowProblem(k + 1, f"disk_size_mib ({size.iat[k]}) is below disk_mib ({disk.iat[k]}): a "
                                              "disk holds no more than its size"))
    return problems


def disk_fields(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Each row's MigrationInputs disk fields (validated rows): nothing for a shared disk; a local one's MiB as both
    what the copy sends and the most the guest can rewrite, and its write rate where given."""
    if "disk_shared" not in frame.columns or "disk_mib" not in frame.columns:
        return [{} for _ in range(len(frame))]
    shared = [SHARED_WORDS[w] for w in frame["disk_shared"].astype(str).str.strip().str.lower()]
    disk, rate, size = (_number(frame, c) for c in ("disk_mib", "disk_write_rate_mib_s", "disk_size_mib"))
    return [{} if shared[k] or not disk[k] else
            {"local_disk_used_mib": float(disk[k]),
             "local_disk_size_mib": float(disk[k] if np.isnan(size[k]) else size[k]),
             "disk_write_rate_mib_s": None if np.isnan(rate[k]) else float(rate[k])} for k in range(len(frame))]


def _number(frame: pd.DataFrame, column: str) -> np.ndarray:
    """A validated optional column as floats, NaN where empty or absent."""
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column].astype(str).str.strip(), errors="coerce").to_numpy(dtype=np.float64)


def predict_rows(predictor: CostPredictor, rows: list[tuple[MigrationInputs, Technique]],
                 shutdown_timeout_ms: np.ndarray) -> list[MigrationCost]:
    """Each row's cost: the live ones by the predictor with their local disks' copy, the cold ones by cold's steps
    (their local disks copied while the guest is off) with the row's shutdown timeout (NaN: the default)."""
    live = [row for row in rows if row[1].is_live]
    predicted = iter(predict_with_disks(predictor, live) if live else [])
    timeouts = np.where(np.isnan(shutdown_timeout_ms), SHUTDOWN_TIMEOUT_MS, shutdown_timeout_ms).tolist()
    return [next(predicted) if t.is_live else cold_cost(inputs, timeout, local_disk_mib=inputs.local_disk_used_mib)
            for (inputs, t), timeout in zip(rows, timeouts, strict=True)]


def with_profile(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose `source` is each row's host profile (`host_profile` where given, else `source`)."""
    out = frame.copy()
    if "host_profile" in frame.columns:
        named = frame["host_profile"].astype(str).str.strip()
        out["source"] = named.where(named != "", frame["source"] if "source" in frame.columns else "")
    return out


def predict_csv(input_path: Path, output_path: Path, predictor: CostPredictor) -> int:
    """Predict every row of `input_path` into `output_path`; returns the number of rows written."""
    frame = read_csv(input_path)
    values = validate(frame, input_path)
    if len(frame) == 0:  # a header alone: nothing to predict, and an output of a header alone says nothing
        raise BatchInputError(input_path, [RowProblem(0, "no rows: the file has a header and nothing else")])
    validated = with_profile(frame)
    for column in NUMERIC_COLUMNS:
        validated[column] = values[column]
    table = InputTable.from_frame(validated)
    rows = [(replace(inputs, **disks), t) for (inputs, t), disks in
            zip(table.rows(dirty_rate_source="input CSV"), disk_fields(frame), strict=True)]
    costs = predict_rows(predictor, rows, _number(frame, "shutdown_timeout_ms"))
    out = frame.copy()
    for column, attr, scale in OUTPUT_TARGETS:
        bounds = np.array(
            [(getattr(c, attr).low, getattr(c, attr).median, getattr(c, attr).high) for c in costs], dtype=np.float64
        ).reshape(len(costs), 3) * scale
        decimals = 0 if column.endswith("_kib") else 1
        out[column] = np.round(bounds[:, 1], decimals)
        out[f"{column}_low"] = np.round(bounds[:, 0], decimals)
        out[f"{column}_high"] = np.round(bounds[:, 2], decimals)
    out["predicted_converges"] = [c.converges for c in costs]
    out["predicted_converge_probability"] = [
        "" if c.converge_probability is None else round(c.converge_probability, 3) for c in costs]
    out["assumed"] = list(table.assumed)
    out["notes"] = ["; ".join(c.notes) for c in costs]
    out["model_name"] = [c.model.name for c in costs]
    out["model_version"] = [c.model.version for c in costs]
    out["model_interval_kind"] = [c.model.interval_kind for c in costs]
    out["model_fallback_reason"] = [c.model.fallback_reason for c in costs]
    _write_atomically(out, output_path)
    return len(out)


def _write_atomically(frame: pd.DataFrame, output_path: Path) -> None:
    output_path = Path(output_path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{output_path.name}.", suffix=".tmp", dir=output_path.parent or ".")
    except OSError as error:
        raise _naming(error, output_path) from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            frame.to_csv(f, index=False)
        os.replace(tmp_name, output_path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        if isinstance(error, OSError):
            raise _naming(error, output_path) from None
        raise


def _naming(error: OSError, output_path: Path) -> OSError:
    """The error of writing the output, naming the path the user gave rather than the temporary file beside it."""
    return OSError(error.errno, error.strerror or str(error), str(output_path))
