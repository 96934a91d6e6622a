"""The card of the lab migration dataset (`<output>.meta.json`), rebuilt from the CSV after every run of
`training.collect_lab`: how it was made, on what, the counts, and what every column means."""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
from collections import Counter
from pathlib import Path
from typing import Any

import libvirt

from training.lab_grid import PRECOPY_TECHNIQUES, RATIO_BANDS, TECHNIQUES, Point

COLUMNS = {
    "migration_id": "lab-<config_id>",
    "technique": "precopy, precopy_autoconverge, precopy_xbzrle, precopy_compress, postcopy",
    "workload": "the writer's setting: idle, or <pattern>-<working set MiB>MiB@<rate MiB/s>",
    "available_bandwidth_mbps": "the link, Mbit/s (10^6 bit/s): 10000 for loopback TCP on one machine, no limit "
                                "of its own, where the cap max_bandwidth_mib_s is what binds; on a shaped link "
                                "(collection links) the rate the stream into the destination was shaped to (tc "
                                "HTB on lo, advisor/lab/shaping.py), always below the cap: MiB/s x 8.388608 "
                                "(16 MiB/s: 134.218)",
    "dirty_rate_pages_per_s": "page-sampling dirty rate over 1 s just before the migration (libvirt "
                              "startDirtyRateCalc, 512 pages per GiB sampled: steps of 2 MiB/s at 128 MiB), "
                              "4 KiB pages per second",
    "vm_memory_mib": "configured guest RAM, MiB (128 or 256; v2: 256, 512 or 1024; QEMU gets 8 KiB more, see "
                     "docs/lab.md)",
    "max_bandwidth_mib_s": "migration bandwidth cap, MiB/s (also after a switch to post-copy)",
    "total_time_ms": "QEMU's elapsed time of the migration job (completed job stats); aborted: wall time at abort",
    "downtime_ms": "QEMU's downtime (completed job stats; for post-copy too); empty when aborted",
    "transferred_kib": "bytes QEMU sent (memory_processed), KiB; aborted: at the abort",
    "source": "lab",
    "memory_used_mib": "MemTotal - MemAvailable from the guest's virtio balloon stats before the migration, MiB",
    "max_downtime_ms": "allowed downtime, ms (set on the job as soon as it runs: see downtime_set_at_ms)",
    "deadline_ms": "the migration is aborted (abortJob) when it runs this long, unless in post-copy, ms",
    "working_set_mib": "measured: MiB rewritten over the 4 s page-sampling window (dirty_rate_4s x 4 s), the "
                       "feature production can observe (advisor/features/dataset.py)",
    "outcome": "completed, aborted (deadline reached) or failed (a lab or libvirt error: see error)",
    "iterations": "QEMU's memory iterations (dirty syncs) of the job",
    "postcopy_requests": "pages the destination requested in post-copy",
    "nonzero_mib": "guest RAM less the zero pages QEMU found in the first round (total - memory_constant pages), "
                   "MiB: what the first round had to send; empty when the first round never ended",
    "writer_working_set_mib": "the writer's setting: MiB of guest memory it rewrites (0: idle); a program's "
                              "--vm-bytes",
    "write_rate_mib_s": "the writer's setting: MiB/s it writes while on; 0 for a program (it runs flat out)",
    "pattern": "idle; steady (continuously); bursty (2 s at the rate, 2 s idle); phased (the working set moves to "
               "the next window of the guest's free memory every 4 s, so the memory touched grows)",
    "dirty_rate_2s_pages_per_s": "page-sampling dirty rate over 2 s before the migration, pages/s",
    "dirty_rate_4s_pages_per_s": "page-sampling dirty rate over 4 s before the migration, pages/s",
    "first_round_dirty_rate_pages_per_s": "QEMU's dirty-pages-rate in the job stats at the first poll after the "
                                          "first round, pages/s; empty when the migration ended before",
    "writer_rate_before_mib_s": "MiB/s the writer really wrote (its own count, in the heartbeat) while the dirty "
                                "rates were measured; empty in the first rows, collected before it was reported",
    "writer_rate_during_mib_s": "MiB/s the writer really wrote from the start of the migration to the heartbeat "
                                "check after it (the guest slows down while it migrates: TCG, a shared 2-core "
                                "machine); empty in the first rows",
    "downtime_set_at_ms": "job elapsed ms when the allowed downtime was set on the running job "
                          "(migrateSetMaxDowntime, read back), well before the first round ends",
    "postcopy_switch": "post-copy: the planned switch (start: as soon as the job runs; round_1: after the first "
                       "round; after_5s)",
    "postcopy_after_ms": "post-copy: when migrateStartPostCopy was called (job elapsed ms); empty: never switched",
    "compression_threads": "precopy_compress: compression threads (zlib level 1, QEMU's default)",
    "autoconverge_initial_pct": "precopy_autoconverge: initial throttle, %",
    "autoconverge_increment_pct": "precopy_autoconverge: throttle increment, %",
    "guest_alive_after": "the guest's heartbeat advanced within 5 s after the migration, on the host running it",
    "fresh_guest": "the guest was booted just before this migration (memory size change, or after a failure)",
    "host": "source->target",
    "host_load_1m": "1-minute load average of the machine (2 cores, shared with other work) at the start",
    "started_at": "UTC time the migration started",
    "config_id": "stable id of the grid point (hash of its settings): the key of resumption",
    "error": "libvirt's or the lab's error text (failed), or libvirt's message for the abort",
    "collection": "the grid the row was collected with (full, v2, links, tiny, tiny-v2, tiny-links); empty in "
                  "the rows collected before the v2 grid (all of the full grid)",
    "guest_image": "busybox (the plain image) or busybox+programs (with Debian's stress and stress-ng and their "
                   "libraries: about 32 MiB more held in guest RAM); empty before v2 (busybox)",
    "writer": "what wrote the guest's memory: idle, lab (the project's busybox writer), stress (Debian's stress "
              "--vm), stress-ng (stress-ng --vm); empty before v2 (lab or idle, see pattern)",
    "writer_command": "the program's command line in the guest; empty for the lab's writer",
    "writer_mode": "the lab's writer: per-second burst (each second's MiB at once, then sleep: every row before "
                   "v2) or continuous (spread over ten ticks a second)",
    "data_pattern": "what is written: random (every page entirely new), zero-50pct / zero-75pct (that share of "
                    "each page stays zero: XBZRLE and compression can shrink it), same-value (stress rewrites the "
                    "same byte: page sampling sees no change, dirty logging sees every write), rand-set "
                    "(stress-ng's varying data); empty before v2 (random) and when idle",
    "balloon_available_mib": "the guest's MemTotal from its balloon stats before the migration (libvirt "
                             "memoryStats available), MiB",
    "balloon_usable_mib": "the guest's MemAvailable from its balloon stats (memoryStats usable), MiB",
    "balloon_unused_mib": "the guest's MemFree from its balloon stats (memoryStats unused), MiB",
    "qemu_rss_mib": "resident memory of the source QEMU process before the migration (memoryStats rss), MiB: guest "
                    "pages QEMU has touched plus its own",
    "vcpu_utilization": "the share of its vCPUs the guest kept busy over the dirty-rate windows before the migration "
                        "(CPU time over wall time and vCPUs, as serving reads it); busy while page sampling reads ~0 "
                        "is a blind reading (advisor.physics.blind_dirty_rate); empty before it was recorded",
}
NOTES = [
    "Hosts are two libvirtd on one machine (advisor/lab): migrations are QEMU 7.2 TCG over loopback TCP; the cap "
    "max_bandwidth_mib_s is what binds, except on a shaped link.",
    "Shaped links (collection links): during the migration, an HTB class on lo limits TCP to the destination "
    "host's incoming-migration port block (u32 filter, destination port with mask 0xfff0) to the link rate, "
    "below the cap; other loopback traffic passes an unlimited default class. Only the stream into the "
    "destination is limited (a link whose bottleneck is one way); the usable bandwidth is min(link, cap) = link. "
    "docs/lab-data.md says how it was checked.",
    "The writer's data is a random pattern shifted by one page per pass: every rewritten page differs entirely, so "
    "XBZRLE and compression gain nothing on it (a worst case for both).",
    "Deadlines: 90 s for most points (the external evaluation's), 60 s and 30 s for a part, to keep the run "
    "within a few hours; the deadline is independent of the other factors.",
    "The guest is reused between migrations and rebooted only for a change of memory size or after a failure; "
    "a new working set first zeroes and frees the previous one, so QEMU skips it.",
    "v2 (collection v2): the guest image with programs, 256 MiB-1 GiB; memory a stopped program freed keeps its "
    "content (the guest is not rebooted between points), so non-zero memory carries history, as on a real host: "
    "see nonzero_mib and qemu_rss_mib.",
    "History of the shipped run: rows started before 11:17 UTC on 2026-12-01 lack writer_rate_before_mib_s and "
    "writer_rate_during_mib_s (added then); rows before 11:49 lack downtime_set_at_ms: until then the allowed "
    "downtime was never set, so those migrations ran at QEMU's default 300 ms, and only the rows that say 300 "
    "were kept (55 rows at 100 or 1000 ms were dropped and run again with the downtime set).",
]


def seed_cache(cache: Path, dev_cache: Path) -> None:
    """Reuse the developer lab's downloaded guest parts (kernel, busybox), not its initramfs or daemon caches."""
    parts, dev_parts = cache / "guest" / "parts", dev_cache / "guest" / "parts"
    if not (parts / "VERSION").exists() and (dev_parts / "VERSION").exists():
        shutil.copytree(dev_parts, parts, dirs_exist_ok=True)


def _versions() -> dict[str, str]:
    out = {"libvirt_python": ".".join(str(libvirt.getVersion() // 1000 ** i % 1000) for i in (2, 1, 0))}
    try:
        qemu = subprocess.run(["qemu-system-x86_64", "--version"], check=True, capture_output=True, text=True)
        out["qemu"] = qemu.stdout.splitlines()[0]
        daemon = subprocess.run(["libvirtd", "--version"], check=True, capture_output=True, text=True)
        out["libvirtd"] = daemon.stdout.strip()
    except (OSError, subprocess.CalledProcessError) as exc:
        out["error"] = str(exc)
    return out


def _machine() -> dict[str, Any]:
    mem = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), "0")
    return {"system": platform.platform(), "cpus": os.cpu_count(), "memory_gib": round(int(mem) / 2**20, 1),
            "shared": "yes: other engineers' tests and benchmarks ran at the same time (see host_load_1m)"}


def band_of(ratio: float) -> str:
    for low, high in RATIO_BANDS:
        if low <= ratio < high:
            return f"{low:g}-{high:g}"
    return "?"


def usable_mib_s(row: dict[str, str]) -> float:
    """What the migration could send per second: min(link, cap), the link recorded in Mbit/s."""
    return min(float(row["max_bandwidth_mib_s"]), float(row["available_bandwidth_mbps"]) * 1e6 / 8 / 2**20)


def convergence(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    """Per pre-copy technique and band of working set / (min(link, cap) x downtime): completed / measured
    (failed left out)."""
    table: dict[str, dict[str, list[int]]] = {}
    for r in rows:
        if r["technique"] not in PRECOPY_TECHNIQUES or r["outcome"] == "failed":
            continue
        ws = float(r["writer_working_set_mib"])
        band = "idle" if ws == 0 else band_of(ws / (usable_mib_s(r) * float(r["max_downtime_ms"]) / 1000))
        cell = table.setdefault(r["technique"], {}).setdefault(band, [0, 0])
        cell[0] += r["outcome"] == "completed"
        cell[1] += 1
    order = ["idle", *(band_of(low) for low, _ in RATIO_BANDS)]
    return {t: {b: f"{table[t][b][0]}/{table[t][b][1]}" for b in order if b in table[t]} for t in table}


def write(args: argparse.Namespace, grid: list[Point], runs: list[dict[str, Any]]) -> None:
    path = args.output.with_suffix(".meta.json")
    previous: dict[str, Any] = {}
    if path.exists():
        try:
            previous = json.loads(path.read_text())
        except ValueError:
            previous = {}
    rows: list[dict[str, str]] = []
    if args.output.exists():
        with open(args.output, newline="") as handle:
            rows = list(csv.DictReader(handle))
    started = sorted(r["started_at"] for r in rows if r.get("started_at"))
    by = Counter((r["technique"], r["outcome"]) for r in rows)
    card = {
        "dataset": args.output.name,
        "made_by": "training/collect_lab.py (the grid: training/lab_grid.py; one migration: "
                   "training/collect_lab_migration.py)",
        "command": args.command,
        "grid": args.grid, "seed": args.seed, "grid_points": len(grid), "rows": len(rows),
        "rows_by_technique_and_outcome": {t: {o: by[(t, o)] for o in ("completed", "aborted", "failed")
                                              if by[(t, o)]} for t in TECHNIQUES if any(by[(t, o)] for o in
                                                                                       ("completed", "aborted",
                                                                                        "failed"))},
        "rows_by_collection": dict(Counter(r.get("collection") or "full (before v2)" for r in rows)),
        "rows_by_writer": dict(Counter(f"{r.get('writer') or 'lab/idle (before v2)'} {r.get('data_pattern') or ''}"
                                       .strip() for r in rows)),
        "rows_by_shaped_link_mib_s": dict(sorted(Counter(
            round(usable_mib_s(r)) for r in rows if usable_mib_s(r) < float(r["max_bandwidth_mib_s"])).items())),
        "convergence_by_budget_ratio": convergence(rows),
        "silent_guests": sum(r["guest_alive_after"] == "False" for r in rows),
        "failures": [{"config_id": r["config_id"], "error": r["error"]} for r in rows if r["outcome"] == "failed"],
        "first_started_at": started[0] if started else None, "last_started_at": started[-1] if started else None,
        "runs": [*previous.get("runs", []), *runs],
        "versions": _versions(), "machine": _machine(), "notes": NOTES, "columns": COLUMNS,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(card, indent=2) + "\n")
    tmp.replace(path)
