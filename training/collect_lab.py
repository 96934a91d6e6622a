"""Collect the lab's own migration dataset: a designed grid of real live migrations between the lab's two hosts.

    .venv/bin/python -m training.collect_lab                     # the full grid (training/lab_grid.py), ~2.5 h
    .venv/bin/python -m training.collect_lab --grid tiny --output /tmp/x.csv --lab-root /tmp/alc-tiny
    .venv/bin/python -m training.collect_lab --dry-run           # the grid and its time estimate, nothing runs
    .venv/bin/python -m training.collect_lab --grid links        # v2 points over shaped links (root runs tc)

One guest (vm1, TCG, 128 or 256 MiB) is migrated back and forth between hv1 and hv2, its memory writer set per
migration (working set, rate, pattern); it is rebooted only when the memory size changes or it is found silent.
Each migration is one row (training/collect_lab_migration.py says how it is measured), appended to the CSV,
flushed and fsynced at once. The job is resumable: on start it reads the CSV (a truncated last line, left by a
crash in the middle of a write, is cut off) and skips every `config_id` already there, so an interrupted run
(Ctrl-C, kill -9, a lab crash) loses only the migration in flight. A migration whose lab step failed is recorded
with outcome `failed` and its error; `--retry-failed` runs those again (their old rows are dropped first). The
card (`<output>.meta.json`: command, grid, versions, machine, counts, columns) is rewritten after every run.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import libvirt

from advisor.lab import Lab, LabError, virt
from advisor.lab.shaping import ShapingError
from training import collect_lab_card as lab_card
from training.collect_lab_migration import GUEST, link_mbps, migrate_and_measure
from training.lab_grid import GRIDS, PROGRAM_IMAGE, Point, estimate_s

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = REPO / "training" / "data" / "lab_migrations.csv"
DEFAULT_ROOT = Path("/tmp/advisor-lab-collect")
FIELDS = (
    # the SNU data's columns, with its units
    "migration_id", "technique", "workload", "available_bandwidth_mbps", "dirty_rate_pages_per_s", "vm_memory_mib",
    "max_bandwidth_mib_s", "total_time_ms", "downtime_ms", "transferred_kib",
    # the optional inputs of advisor/features/dataset.py
    "source", "memory_used_mib", "max_downtime_ms", "deadline_ms", "working_set_mib",
    # outcome
    "outcome", "iterations", "postcopy_requests",
    # the lab's own
    "nonzero_mib", "writer_working_set_mib", "write_rate_mib_s", "pattern", "dirty_rate_2s_pages_per_s",
    "dirty_rate_4s_pages_per_s", "first_round_dirty_rate_pages_per_s", "writer_rate_before_mib_s",
    "writer_rate_during_mib_s", "downtime_set_at_ms", "postcopy_switch", "postcopy_after_ms",
    "compression_threads", "autoconverge_initial_pct", "autoconverge_increment_pct", "guest_alive_after",
    "fresh_guest", "host", "host_load_1m", "started_at", "config_id", "error",
    # added with the v2 grid (empty in the rows collected before)
    "collection", "guest_image", "writer", "writer_command", "writer_mode", "data_pattern", "balloon_available_mib",
    "balloon_usable_mib", "balloon_unused_mib", "qemu_rss_mib",
    # added during the first v2 run (empty in the rows before)
    "vcpu_utilization",
)
# The columns of the rows collected before the v2 grid: a CSV with them gets the new columns, empty, on start.
V1_FIELDS = FIELDS[:FIELDS.index("collection")]


class _Stop(Exception):
    pass


def _on_term(_sig: int, _frame: FrameType | None) -> None:
    raise _Stop("SIGTERM")


def read_done(path: Path) -> list[dict[str, str]]:
    """The rows already recorded; a last line cut by a crash is removed from the file first."""
    if not path.exists() or path.stat().st_size == 0:
        return []
    raw = path.read_bytes()
    if not raw.endswith(b"\n"):
        keep = raw.rfind(b"\n") + 1
        print(f"{path}: cutting off a truncated last line ({len(raw) - keep} bytes)", file=sys.stderr)
        with open(path, "r+b") as handle:
            handle.truncate(keep)
            os.fsync(handle.fileno())
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        columns = tuple(reader.fieldnames or ())
    if columns != FIELDS and len(columns) >= len(V1_FIELDS) and FIELDS[:len(columns)] == columns:
        print(f"{path}: adding the columns {', '.join(FIELDS[len(columns):])} (empty in its {len(rows)} rows)",
              file=sys.stderr)
        rewrite(path, [{**row, **dict.fromkeys(FIELDS[len(columns):], "")} for row in rows])
    elif columns != FIELDS:
        raise SystemExit(f"{path} has other columns than this job writes; move it away or give --output")
    return rows


def rewrite(path: Path, rows: list[dict[str, str]]) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def append(path: Path, row: dict[str, Any]) -> None:
    """One row, written with a single write, flushed and fsynced: a crash leaves at most a truncated last line."""
    new = not path.exists() or path.stat().st_size == 0
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS, extrasaction="raise")
        if new:
            writer.writeheader()
        writer.writerow({k: _cell(row.get(k)) for k in FIELDS})
        handle.flush()
        os.fsync(handle.fileno())


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if math.isfinite(value) else ""
    return " ".join(str(value).split())


def base_row(point: Point, grid: str) -> dict[str, Any]:
    lab_writer = "continuous" if point.continuous else "per-second burst"
    return {
        "migration_id": f"lab-{point.config_id}", "technique": point.technique, "workload": point.workload,
        "available_bandwidth_mbps": link_mbps(point), "vm_memory_mib": point.memory_mib,
        "max_bandwidth_mib_s": point.cap_mib_s, "source": "lab", "max_downtime_ms": point.max_downtime_ms,
        "deadline_ms": point.deadline_ms, "writer_working_set_mib": point.working_set_mib,
        "write_rate_mib_s": point.write_rate_mib_s, "pattern": point.pattern, "postcopy_switch": point.postcopy_switch,
        "compression_threads": point.compression_threads or None,
        "autoconverge_initial_pct": point.autoconverge_initial_pct or None,
        "autoconverge_increment_pct": point.autoconverge_increment_pct or None, "config_id": point.config_id,
        "collection": grid, "guest_image": point.image,
        "writer": "idle" if point.pattern == "idle" else point.writer, "writer_command": " ".join(point.program),
        "writer_mode": "" if point.program or point.pattern == "idle" else lab_writer,
        "data_pattern": point.data_pattern,
    }


class LabGuest:
    """The collection's lab: two hosts, one guest of the memory size the next point needs, rebooted when asked."""

    def __init__(self, root: Path, cache: Path, progress: Callable[[str], None], programs: bool = False) -> None:
        self.root, self.cache, self.progress, self.programs = root, cache, progress, programs
        self.memory_mib: int | None = None
        self.lab = self._lab(128)
        self.needs_boot = True
        self.boots = 0

    def _lab(self, memory_mib: int) -> Lab:
        return Lab(self.root, cache=self.cache, guest_memory_mib=memory_mib, guest_programs=self.programs,
                   with_prometheus=False,
                   progress=lambda line: self.progress(f"  [lab] {line}"))

    def start(self) -> None:
        self.lab.down()  # whatever a killed run left: a half-done migration, a stale guest
        self.lab.up(hosts=2, guests=0)

    def ready(self, memory_mib: int) -> bool:
        """The guest runs with this memory; returns True when it was (re)booted for it."""
        if memory_mib == self.memory_mib and not self.needs_boot:
            return False
        for host in ("hv1", "hv2"):
            virt.destroy(self.lab.uri(host), GUEST)
        self.lab = self._lab(memory_mib)
        self.lab.up(hosts=2, guests=1)
        self.memory_mib, self.needs_boot = memory_mib, False
        self.boots += 1
        return True

    def repair(self) -> None:
        """After a failed step: restart whatever is dead, and boot the guest afresh."""
        self.needs_boot = True
        try:
            self.lab.up(hosts=2, guests=0)
        except (LabError, OSError, TimeoutError, libvirt.libvirtError) as exc:
            self.progress(f"  lab repair: {exc}; taking it down and up again")
            self.lab.down()
            self.lab.up(hosts=2, guests=0)


def run_point(guest: LabGuest, point: Point, grid: str) -> dict[str, Any]:
    row = base_row(point, grid)
    try:
        row["fresh_guest"] = guest.ready(point.memory_mib)
        row.update(migrate_and_measure(guest.lab, point))
    except (LabError, ShapingError, OSError, TimeoutError, libvirt.libvirtError) as exc:
        message = exc.get_error_message() if isinstance(exc, libvirt.libvirtError) else str(exc)
        row.update(outcome="failed", error=f"{type(exc).__name__}: {message}")
    if row["outcome"] == "failed" or row.get("guest_alive_after") is False:
        guest.repair()
    return row


def _fmt_s(seconds: float) -> str:
    return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"


def _describe_row(row: dict[str, Any]) -> str:
    if row["outcome"] == "failed":
        return f"FAILED: {row.get('error', '')}"
    downtime = row.get("downtime_ms")
    return (f"{row['outcome']} in {float(row.get('total_time_ms') or 0) / 1000:.1f} s, "
            f"{float(row.get('transferred_kib') or 0) / 1024:.0f} MiB, "
            f"downtime {'-' if downtime is None else f'{float(downtime):.0f} ms'}, "
            f"{row.get('iterations')} rounds, 1 s rate {float(row.get('dirty_rate_pages_per_s') or 0) / 256:.0f} "
            f"MiB/s, alive {row.get('guest_alive_after')}")


def _to_run(args: argparse.Namespace, grid: list[Point]) -> tuple[list[Point], set[str]]:
    """The points still to do and the configurations already recorded; --retry-failed drops the failed ones from
    the file first (a dry run only lists them as to do)."""
    rows = read_done(args.output)
    failed_ids = {r["config_id"] for r in rows if r["outcome"] == "failed"}
    if args.retry_failed and failed_ids:
        rows = [r for r in rows if r["config_id"] not in failed_ids]
        if not args.dry_run:  # a dry run writes nothing
            rewrite(args.output, rows)
        print(f"retrying {len(failed_ids)} failed configuration(s)", flush=True)
    done = {r["config_id"] for r in rows}
    todo = [p for p in grid if p.config_id not in done and args.memory in (None, p.memory_mib)]
    return (todo if args.limit is None else todo[:args.limit]), done


def collect(args: argparse.Namespace) -> int:
    grid = GRIDS[args.grid](args.seed)
    sizes = sorted({p.memory_mib for p in grid})
    if args.memory is not None and args.memory not in sizes:  # else "0 to run", as if all were done
        print(f"collect_lab: --memory {args.memory}: no point of grid {args.grid} has that memory (it has "
              f"{', '.join(map(str, sizes))} MiB)", file=sys.stderr)
        return 2
    todo, done = _to_run(args, grid)
    # one guest image for the whole grid: the image with programs if any point needs it
    images = {p.image for p in grid}
    if len(images) > 1:
        raise SystemExit(f"grid {args.grid} mixes guest images {sorted(images)}")
    programs = images == {PROGRAM_IMAGE}
    estimate = sum(estimate_s(p) for p in todo)
    already = sum(p.config_id in done for p in grid)
    print(f"grid {args.grid} (seed {args.seed}): {len(grid)} points, {already} already in "
          f"{args.output}, {len(todo)} to run, estimated {_fmt_s(estimate)}", flush=True)
    if args.dry_run:
        for i, p in enumerate(todo, 1):
            print(f"{i:4d} {p.config_id} {p.describe()} ~{estimate_s(p):.0f} s")
        return 0
    args.output.parent.mkdir(parents=True, exist_ok=True)
    lab_card.seed_cache(args.cache, REPO / ".lab" / "cache")
    if not todo:
        lab_card.write(args, grid, [])
        return 0
    previous = signal.signal(signal.SIGTERM, _on_term)
    guest = LabGuest(args.lab_root, args.cache, lambda line: print(line, flush=True), programs)
    started = time.monotonic()
    run: dict[str, Any] = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "migrations": 0, "status": "running"}
    spent_est = 0.0
    try:
        guest.start()
        for n, point in enumerate(todo, 1):
            print(f"[{n}/{len(todo)}] {point.config_id} {point.describe()}", flush=True)
            row = run_point(guest, point, args.grid)
            append(args.output, row)
            run["migrations"] = n
            spent_est += estimate_s(point)
            elapsed = time.monotonic() - started
            left = (estimate - spent_est) * elapsed / spent_est
            print(f"[{n}/{len(todo)}]   -> {_describe_row(row)} | {_fmt_s(elapsed)} elapsed, ETA {_fmt_s(left)}",
                  flush=True)
        run["status"] = "complete"
        return 0
    except (_Stop, KeyboardInterrupt) as exc:
        run["status"] = f"interrupted ({type(exc).__name__})"
        print(f"interrupted: {run['migrations']} migration(s) recorded; run again to resume", flush=True)
        return 1
    finally:
        run["wall_s"] = round(time.monotonic() - started, 1)
        run["guest_boots"] = guest.boots
        if not args.keep_lab:
            guest.lab.down()
        signal.signal(signal.SIGTERM, previous)
        lab_card.write(args, grid, [run])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.collect_lab", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help=f"CSV to append to (default {DEFAULT_OUTPUT})")
    p.add_argument("--lab-root", type=Path, default=DEFAULT_ROOT,
                   help=f"the job's own lab (default {DEFAULT_ROOT}; never the test suite's /tmp/advisor-lab-test)")
    p.add_argument("--cache", type=Path, help="guest image and QEMU capabilities (default <lab-root>-cache)")
    p.add_argument("--grid", choices=sorted(GRIDS), default="full",
                   help="full: the designed grid; v2: writers and programs closer to production, 256 MiB-1 GiB; "
                        "links: v2 points over links shaped below the cap (training/lab_grid.py); tiny, tiny-v2, "
                        "tiny-links: 3, 4 and 2 points for the tests")
    p.add_argument("--limit", type=int, help="run at most this many of the points still to do")
    p.add_argument("--memory", type=int, help="run only the points of this guest memory size, MiB")
    p.add_argument("--seed", type=int, default=1, help="the grid's seed (default 1)")
    p.add_argument("--retry-failed", action="store_true", help="run again the points recorded as failed")
    p.add_argument("--keep-lab", action="store_true", help="leave the lab up at the end")
    p.add_argument("--dry-run", action="store_true", help="print the points still to do and the estimate")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 0:
        p.error("--limit must be >= 0")
    args.lab_root = args.lab_root.resolve()
    if args.cache is None:
        args.cache = args.lab_root.with_name(args.lab_root.name + "-cache")
    args.command = " ".join(["python -m training.collect_lab", *(argv if argv is not None else sys.argv[1:])])
    return collect(args)


if __name__ == "__main__":
    sys.exit(main())
