"""The lab collection job (training/collect_lab.py) on its tiny grid: real migrations into a CSV, then resumed
without repeating anything, also after a crash in the middle of writing a row.

It brings up a lab of its own ($ADVISOR_LAB_COLLECT_TEST_ROOT, default /tmp/advisor-lab-collect-test), not the
session `lab` fixture's, and takes it down at the end. About 2 minutes.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from advisor.lab import guest, shaping
from advisor.lab.daemon import HostSpec, host_uuid
from tests.support.lab import needs_the_lab
from training import collect_lab
from training.lab_grid import (
    LINK_CAPS_MIB_S,
    LINK_RATES_MIB_S,
    RATIO_BANDS,
    REPEAT_CONFIGS,
    REPEATS,
    TECHNIQUES,
    V2_MAX_WORKING_SET_MIB,
    Point,
    estimate_s,
    full_grid,
    links_grid,
    repeats_grid,
    tiny_grid,
    tiny_links_grid,
    tiny_v2_grid,
    v2_grid,
)

ROOT = Path(os.environ.get("ADVISOR_LAB_COLLECT_TEST_ROOT", "/tmp/advisor-lab-collect-test"))
PAGES_PER_MIB = 256


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def run(output: Path, *extra: str, grid: str = "tiny") -> int:
    return collect_lab.main(["--grid", grid, "--output", str(output), "--lab-root", str(ROOT), *extra])


def test_the_full_grid_is_deterministic_and_spans_the_convergence_ratio() -> None:
    grid = full_grid(1)
    assert [p.config_id for p in grid] == [p.config_id for p in full_grid(1)]
    assert len(grid) >= 300 and len({p.config_id for p in grid}) == len(grid)
    assert {p.technique for p in grid} == {"precopy", "precopy_autoconverge", "precopy_xbzrle", "precopy_compress",
                                           "postcopy"}
    for technique in ("precopy", "precopy_autoconverge", "precopy_xbzrle", "precopy_compress"):
        ratios = [p.budget_ratio for p in grid if p.technique == technique and p.working_set_mib > 0]
        for low, high in RATIO_BANDS:
            assert sum(low <= r < high for r in ratios) >= 8, (technique, low, high)
    assert all(p.working_set_mib <= {128: 40, 256: 96}[p.memory_mib] for p in grid)
    assert sum(p.deadline_ms == 90_000 for p in grid) > len(grid) / 2
    assert sum(p.max_downtime_ms == 300 for p in grid) > len(grid) / 2


def test_the_repeats_grid_runs_each_configuration_several_times_in_random_order() -> None:
    grid = repeats_grid(1)
    assert [p.config_id for p in grid] == [p.config_id for p in repeats_grid(1)]
    assert len({p.config_id for p in grid}) == len(grid) == REPEAT_CONFIGS * REPEATS
    settings = Counter(replace(p, replicate=0) for p in grid)
    assert len(settings) == REPEAT_CONFIGS and set(settings.values()) == {REPEATS}
    assert {p.technique for p in grid} == {"precopy", "precopy_autoconverge", "precopy_xbzrle", "precopy_compress",
                                           "postcopy"}
    assert all(p.memory_mib <= 512 for p in grid)
    # not each configuration's runs back to back: the machine's state drifts, and that is part of what is measured
    assert len({replace(p, replicate=0) for p in grid[:REPEATS]}) > 1


def test_the_v2_fields_leave_the_older_grids_ids_as_they_were() -> None:
    # the id of the full grid's first point as shipped in training/data/lab_migrations.csv (seed 1)
    assert full_grid(1)[0].config_id == "305e149047fd"
    plain = Point(256, "steady", 16, 8, "precopy", 32, 300, 20_000)
    assert plain.config_id != Point(256, "steady", 16, 8, "precopy", 32, 300, 20_000, continuous=True).config_id
    assert plain.config_id != Point(256, "steady", 16, 8, "precopy", 32, 300, 20_000, constant_pct=50).config_id


def test_the_v2_grid_mixes_writers_sizes_and_techniques_in_few_memory_blocks() -> None:
    grid = v2_grid(1)
    assert [p.config_id for p in grid] == [p.config_id for p in v2_grid(1)]
    assert len(grid) >= 300 and len({p.config_id for p in grid}) == len(grid)
    assert {p.memory_mib for p in grid} == {256, 512, 1024}
    assert {(p.writer, p.data_pattern) for p in grid if p.pattern != "idle"} == {
        ("lab", "random"), ("lab", "zero-50pct"), ("lab", "zero-75pct"), ("stress", "same-value"),
        ("stress-ng", "rand-set")}
    assert any(p.continuous for p in grid) and any(not p.continuous and p.writer == "lab" for p in grid)
    assert {p.deadline_ms for p in grid} == {30_000, 60_000, 90_000}
    assert len({p.technique for p in grid}) == 5
    assert all(p.working_set_mib <= V2_MAX_WORKING_SET_MIB[p.memory_mib] for p in grid)
    # programs run flat out: no rate is set for them, and their command names their memory
    for p in grid:
        assert (p.write_rate_mib_s == 0) == (p.program != [] or p.pattern == "idle"), p
        if p.program:
            assert p.program[0] == p.writer and f"{p.working_set_mib}M" in p.program
    # a guest is rebooted only when the memory size changes: few blocks, not one per point
    changes = sum(a.memory_mib != b.memory_mib for a, b in itertools.pairwise(grid))
    assert changes < len(grid) / 20
    assert {p.image for p in grid} == {"busybox+programs"} and {p.image for p in full_grid(1)} == {"busybox"}
    assert 2 * 3600 < sum(estimate_s(p) for p in grid) < 8 * 3600
    # a v2 point is not the full grid's point of the same settings: another guest image
    assert not {p.config_id for p in grid} & {p.config_id for p in full_grid(1)}


def test_guest_commands_refuse_what_the_guest_would_misread() -> None:
    assert guest.plan_command(7, [(0, 8192)], False, 16, 0, True, 50) == b"plan 7 0 16 0 10 50 0 8192\n"
    assert guest.plan_command(7, [(2, 1024), (2, 0)], True) == b"plan 7 1 - 0 1 0 2 1024 2 0\n"
    with pytest.raises(ValueError):
        guest.plan_command(7, [(0, 1024)], False, constant_pct=30)
    assert guest.program_command(3, ["stress", "--vm", "1", "--vm-bytes", "64M"]) == \
        b"prog 3 stress --vm 1 --vm-bytes 64M\n"
    assert guest.program_command(3, []) == b"prog 3\n"
    for argv in (["sh", "-c", "reboot"], ["stress", "--vm", "1;reboot"], ["stress", "a b"]):
        with pytest.raises(ValueError):
            guest.program_command(3, argv)


@pytest.mark.integration
def test_tiny_collection_records_real_migrations_and_resumes(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    needs_the_lab()
    output = tmp_path / "lab.csv"
    assert run(output) == 0

    first = rows(output)
    assert list(first[0]) == list(collect_lab.FIELDS)
    assert [r["config_id"] for r in first] == [p.config_id for p in tiny_grid(1)]
    by_workload = {r["workload"]: r for r in first}
    idle, aborted, postcopy = by_workload["idle"], by_workload["steady-16MiB@32"], by_workload["bursty-8MiB@8"]
    assert idle["outcome"] == "completed" and postcopy["outcome"] == "completed", first
    # 16 MiB rewritten at 32 MiB/s against an 8 MiB/s cap cannot finish within 8 s: aborted at the deadline.
    assert aborted["outcome"] == "aborted" and aborted["downtime_ms"] == "" and "cancel" in aborted["error"]
    assert 8000 <= float(aborted["total_time_ms"]) < 9500
    assert 0 < float(aborted["transferred_kib"]) < 9.5 * 8 * 1024
    for r in (idle, postcopy):
        assert 40 * 1024 < float(r["transferred_kib"]) < 200 * 1024, r  # KiB: QEMU skips the zero pages
        assert 0 < float(r["downtime_ms"]) < 1000 and 40 < float(r["nonzero_mib"]) <= 128.01, r
    assert postcopy["postcopy_switch"] == "start" and float(postcopy["postcopy_after_ms"]) > 0
    # The writer's own count (in the heartbeat): nothing when idle, about the set 32 MiB/s when steady.
    assert float(idle["writer_rate_before_mib_s"]) == 0 and float(idle["writer_rate_during_mib_s"]) == 0
    # (counted between heartbeats, which a loaded machine delays: a second's writes can land in a shorter gap)
    assert 8 < float(aborted["writer_rate_before_mib_s"]) <= 40, aborted
    for r in first:
        assert r["source"] == "lab" and r["vm_memory_mib"] == "128"
        assert (r["error"] == "") == (r["outcome"] == "completed"), r
        assert r["guest_alive_after"] == "True", r
        for column in ("dirty_rate_pages_per_s", "dirty_rate_2s_pages_per_s", "dirty_rate_4s_pages_per_s"):
            # libvirt reads whole MiB/s: a pages/s figure is a multiple of 256
            assert float(r[column]) >= 0 and float(r[column]) % PAGES_PER_MIB == 0, (column, r)
        assert 5 < float(r["memory_used_mib"]) < 128, r
    card = json.loads(output.with_suffix(".meta.json").read_text())
    assert card["rows"] == 3 and card["silent_guests"] == 0 and card["failures"] == []

    # Resumed: everything is recorded, nothing runs again.
    assert run(output) == 0
    assert rows(output) == first

    # A crash in the middle of writing the last row: the cut line is removed and that point is the one to run
    # again (a dry run lists it; running it is what the first run did).
    raw = output.read_bytes()
    last_line = raw.rstrip(b"\n").rsplit(b"\n", 1)[1]
    output.write_bytes(raw[:len(raw) - len(last_line) // 2 - 1])
    capsys.readouterr()
    assert run(output, "--dry-run") == 0
    planned = [line.split()[1] for line in capsys.readouterr().out.splitlines() if line[:4].strip().isdigit()]
    assert planned == [first[2]["config_id"]]
    assert rows(output) == first[:2]


@pytest.mark.integration
def test_tiny_v2_collection_runs_real_programs_and_the_continuous_compressible_writer(tmp_path: Path) -> None:
    """stress and stress-ng from Debian run in the guest; the lab's writer writes continuously, partly zero pages."""
    needs_the_lab()
    output = tmp_path / "lab.csv"
    assert run(output, grid="tiny-v2") == 0
    got = rows(output)
    assert [r["config_id"] for r in got] == [p.config_id for p in tiny_v2_grid(1)]
    stress, stress_ng, compressible, continuous = got
    for r in got:
        assert r["outcome"] in ("completed", "aborted") and r["guest_alive_after"] == "True", r
        assert r["collection"] == "tiny-v2" and r["guest_image"] == "busybox+programs" and r["vm_memory_mib"] == "256"
        for column in ("balloon_available_mib", "balloon_usable_mib", "balloon_unused_mib", "qemu_rss_mib"):
            assert float(r[column]) > 0, (column, r)
        assert float(r["balloon_usable_mib"]) < float(r["balloon_available_mib"]) < 256, r
        assert float(r["transferred_kib"]) > 0, r
        # (compression in TCG on a loaded machine can take longer than the deadline for the first round)
        assert r["nonzero_mib"] == "" or 100 < float(r["nonzero_mib"]) <= 256.01, r
    assert stress["writer"] == "stress" and stress["data_pattern"] == "same-value"
    assert stress["writer_command"] == "stress --vm 1 --vm-bytes 32M --vm-keep"
    assert stress_ng["writer"] == "stress-ng" and stress_ng["data_pattern"] == "rand-set"
    # stress rewrites the same byte: page sampling, which compares contents, reads (almost) nothing over 4 s,
    # stress-ng's varying data it sees; QEMU's dirty logging sees stress's writes: its 32 MiB, rewritten flat out,
    # never fit the 9.6 MiB that 300 ms at 32 MiB/s allow, and the migration is aborted at its deadline
    assert float(stress["dirty_rate_4s_pages_per_s"]) <= 2 * PAGES_PER_MIB, stress
    assert float(stress_ng["dirty_rate_4s_pages_per_s"]) > 2 * PAGES_PER_MIB, stress_ng
    assert stress["outcome"] == "aborted", stress
    assert stress["writer_rate_before_mib_s"] == "" and stress["writer_mode"] == ""
    for r in (compressible, continuous):
        assert r["writer"] == "lab" and r["writer_mode"] == "continuous", r
        assert 4 < float(r["writer_rate_before_mib_s"]) <= 12, r  # 8 MiB/s set
    assert compressible["data_pattern"] == "zero-75pct" and continuous["data_pattern"] == "random"
    assert continuous["outcome"] == "completed" and float(continuous["postcopy_after_ms"]) > 0
    card = json.loads(output.with_suffix(".meta.json").read_text())
    assert card["rows_by_collection"] == {"tiny-v2": 4} and card["failures"] == []


def test_a_csv_of_the_rows_before_v2_gets_the_new_columns_empty(tmp_path: Path) -> None:
    output = tmp_path / "lab.csv"
    old = {column: "1" for column in collect_lab.V1_FIELDS}
    with open(output, "w", newline="") as handle:
        writer = csv.DictWriter(handle, collect_lab.V1_FIELDS)
        writer.writeheader()
        writer.writerow(old)
    assert collect_lab.read_done(output) == [old]
    again = rows(output)
    assert list(again[0]) == list(collect_lab.FIELDS)
    assert again == [{**old, **{c: "" for c in collect_lab.FIELDS if c not in old}}]


def test_the_links_grid_shapes_every_technique_at_every_link_rate_below_the_cap() -> None:
    grid = links_grid(1)
    assert [p.config_id for p in grid] == [p.config_id for p in links_grid(1)]
    assert 25 <= len(grid) <= 35 and len({p.config_id for p in grid}) == len(grid)
    assert {(p.technique, p.link_mib_s) for p in grid} == {(t, r) for t in TECHNIQUES for r in LINK_RATES_MIB_S}
    assert all(0 < p.link_mib_s < p.cap_mib_s and p.usable_mib_s == p.link_mib_s for p in grid)
    assert {p.cap_mib_s for p in grid} == set(LINK_CAPS_MIB_S) and {p.image for p in grid} == {"busybox+programs"}
    assert {p.deadline_ms for p in grid} == {30_000, 60_000, 90_000}
    assert {p.memory_mib for p in grid} == {256, 512, 1024}
    # a link is part of a point's identity, and the points without one keep the ids they had
    plain, shaped = tiny_links_grid(1)
    assert shaped.config_id != plain.config_id and plain.link_mib_s == 0
    assert not {p.config_id for p in grid} & {p.config_id for p in v2_grid(1)}


def achieved_mib_s(row: dict[str, str]) -> float:
    return float(row["transferred_kib"]) / 1024 / (float(row["total_time_ms"]) / 1000)


@pytest.mark.integration
def test_tiny_links_collection_migrates_over_a_link_slower_than_the_cap(tmp_path: Path) -> None:
    """The same migration at cap 64 MiB/s over plain loopback and over a link shaped to 8 MiB/s: the shaped one
    moves at the link's rate, the plain one well above it, and the link is gone from lo afterwards."""
    needs_the_lab()
    output = tmp_path / "lab.csv"
    assert run(output, grid="tiny-links") == 0
    plain, shaped = rows(output)
    assert [plain["config_id"], shaped["config_id"]] == [p.config_id for p in tiny_links_grid(1)]
    for r in (plain, shaped):
        assert r["outcome"] == "completed" and r["guest_alive_after"] == "True", r
        assert r["collection"] == "tiny-links" and r["max_bandwidth_mib_s"] == "64", r
        assert 100 * 1024 < float(r["transferred_kib"]) < 256 * 1024, r  # 64 MiB written plus the guest's own
    assert plain["available_bandwidth_mbps"] == "10000"
    assert float(shaped["available_bandwidth_mbps"]) == pytest.approx(8 * 2**20 * 8 / 1e6, abs=0.001)
    # MiB sent over the job's time (its start and the downtime included): at most the link, and near it
    print(f"achieved: plain {achieved_mib_s(plain):.1f} MiB/s in {float(plain['total_time_ms']) / 1000:.1f} s, "
          f"shaped {achieved_mib_s(shaped):.1f} MiB/s in {float(shaped['total_time_ms']) / 1000:.1f} s")
    assert 0.6 * 8 < achieved_mib_s(shaped) <= 1.1 * 8, shaped
    # the plain one is held by the cap or by TCG on a busy machine (15 MiB/s at a load of 8), not by 8 MiB/s
    assert achieved_mib_s(plain) > 1.5 * 8, plain
    # nothing of this lab's is left on lo (removed with the migration, and again at lab down)
    hosts = [HostSpec(h, ROOT / "hosts" / h, ROOT, host_uuid(ROOT.resolve(), h)) for h in ("hv1", "hv2")]
    assert shaping.remove_links(hosts) == []
    card = json.loads(output.with_suffix(".meta.json").read_text())
    assert card["rows_by_shaped_link_mib_s"] == {"8": 1} and card["failures"] == []
