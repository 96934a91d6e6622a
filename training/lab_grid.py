"""The designed grid of lab migrations that `training.collect_lab` runs: which configurations, in which order,
and how long they should take.

Not a full factorial (thousands of runs) but a stratified random design, deterministic for a seed:

- Pre-copy techniques (precopy, auto-converge, XBZRLE, compression) are stratified by the ratio that decides
  convergence, working set / (cap x allowed downtime): an equal number of points in each band of RATIO_BANDS
  (from well below 1 to well above 10), plus a few idle guests; the other factors are drawn at random within
  each band (rejection sampling, so a band that some combinations cannot reach draws the others more often).
- Post-copy is drawn without strata, with a planned switch point (at the start, after the first round, after 5 s).
- Memory 128 or 256 MiB; the working set is capped below what the guest has free (44 and 167 MiB measured at
  boot, so at most 40 and 96 MiB); patterns steady, bursty (2 s at the rate, 2 s idle), phased (the working
  set moves to the next window every PHASE_S seconds); allowed downtime 300 ms most often, 100 and 1000 ms;
  deadline 90 s most often, 60 s and 30 s for a part (time: see `estimate_s`).

Each point has a stable `config_id` (a hash of its settings and its replicate number), so a resumed run skips
exactly what was already measured. Points are run in blocks of one memory size (a memory change means a reboot),
blocks of both sizes alternating, random order inside: any prefix of the run is a fair sample of the grid.

The `v2` grid (`v2_grid`) is closer to production: guests of 256 MiB to 1 GiB running the guest image with
programs, and writers mixed: idle; the lab's writer in its per-second bursts or continuous (each second's MiB
spread over ten ticks), with random or compressible data (half or three quarters of each page zero); Debian's
`stress --vm --vm-keep`, which rewrites its memory with the same byte every pass (page sampling reads ~0 while
dirty logging sees every write); `stress-ng --vm --vm-method rand-set`, which writes varying data. The programs
run flat out (their rate is the guest's, not set). Not stratified by the convergence ratio, which the programs'
unknown rates make meaningless: drawn at random per factor.

The `links` grid (`links_grid`) runs v2 points over shaped links (advisor/lab/shaping.py): the stream into the
destination limited to 8, 12, 16 or 24 MiB/s, always below the cap (32 or 64 MiB/s), so the link, not the cap,
limits the transfer; every technique with every link rate, v2 guests, writers, downtimes and deadlines.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TypeVar

TECHNIQUES = ("precopy", "precopy_autoconverge", "precopy_xbzrle", "precopy_compress", "postcopy")
PRECOPY_TECHNIQUES = TECHNIQUES[:4]
PATTERNS = ("idle", "steady", "bursty", "phased")
BURST_ON_S, BURST_OFF_S = 2, 2
PHASE_S = 4
# Working sets per memory size: below what the writer may use (docs/lab-data.md: 44 and 167 MiB at boot).
WORKING_SETS_MIB = {128: (4, 8, 16, 32, 40), 256: (4, 8, 16, 32, 48, 64, 96)}
# A phased working set needs at least two windows in the region.
PHASED_MAX_MIB = {128: 16, 256: 64}
WRITE_RATES_MIB_S = (2, 4, 8, 12, 16, 24, 32, 48, 64)
CAPS_MIB_S = (8, 16, 32, 64)
DOWNTIMES_MS = ((300, 0.6), (100, 0.2), (1000, 0.2))
DEADLINES_MS = ((90_000, 0.55), (60_000, 0.15), (30_000, 0.30))
RATIO_BANDS = ((0.0, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 4.0), (4.0, 10.0), (10.0, math.inf))
# Points per band for each pre-copy technique, idle guests per technique, and post-copy points.
PER_BAND = {"precopy": 13, "precopy_autoconverge": 9, "precopy_xbzrle": 9, "precopy_compress": 8}
IDLE_PER_TECHNIQUE = 4
POSTCOPY_POINTS = 54
POSTCOPY_SWITCHES = (("start", 0.4), ("round_1", 0.3), ("after_5s", 0.3))
AUTOCONVERGE = (((20, 10), 0.7), ((50, 20), 0.3))  # (initial %, increment %), QEMU's default first
COMPRESSION_THREADS = ((1, 0.5), (2, 0.5))
BLOCK = 40  # points per memory block
T = TypeVar("T")
# What one migration costs besides the copy (plan, zeroing and filling, 1+2+4 s of page sampling, heartbeat,
# libvirt's wait for the source QEMU) and what an idle guest holds in non-zero pages (measured, MiB).
OVERHEAD_S = 15.0
IDLE_NONZERO_MIB = {128: 60.0, 256: 78.0}

# The writers of the v2 grid: the project's own ("lab") and real programs of the guest image with programs.
WRITERS = ("lab", "stress", "stress-ng")
STRESS_NG_METHOD = "rand-set"  # each 64-bit chunk gets a new random byte on every pass: varying data
V2_MEMORY = ((256, 0.4), (512, 0.35), (1024, 0.25))
# What a v2 writer may use: the guest image with programs holds about 32 MiB more in RAM (135 MiB of region at
# 256 MiB measured at boot), and a program needs its anonymous memory besides the pattern.
V2_WORKING_SETS_MIB = (8, 16, 32, 64, 128, 256, 512)
V2_MAX_WORKING_SET_MIB = {256: 96, 512: 256, 1024: 512}
V2_RATES_MIB_S = (2, 4, 8, 16, 32, 64)
# (writer, continuous, constant %, weight); idle is the lab writer at working set 0
V2_WRITERS = (("idle", False, 0, 0.08), ("lab", False, 0, 0.12), ("lab", True, 0, 0.25), ("lab", True, 50, 0.08),
              ("lab", True, 75, 0.07), ("stress", False, 0, 0.22), ("stress-ng", False, 0, 0.18))
V2_TECHNIQUES = (("precopy", 0.28), ("precopy_autoconverge", 0.2), ("precopy_xbzrle", 0.17),
                 ("precopy_compress", 0.15), ("postcopy", 0.2))
V2_DEADLINES_MS = ((90_000, 0.35), (60_000, 0.3), (30_000, 0.35))
V2_POINTS = 320
V2_BLOCK = 32
# Estimates only: the programs' rate (flat out in TCG; page sampling cannot see stress's) and an idle v2 guest's
# non-zero MiB (the plain image's plus the programs), and the programs' start before measuring.
PROGRAM_RATE_GUESS_MIB_S = 64
V2_IDLE_NONZERO_MIB = {256: 136.0, 512: 150.0, 1024: 170.0}
PROGRAM_START_S = 5.0
PROGRAM_IMAGE = "busybox+programs"
# The links grid: shaped link rates and the caps above them (MiB/s), and its size.
LINK_RATES_MIB_S = (8, 12, 16, 24)
LINK_CAPS_MIB_S = (32, 64)
LINK_POINTS = 30
# The repeats grid: the same migrations run several times, to measure what the machine itself varies.
REPEAT_CONFIGS = 10
REPEATS = 4
REPEAT_MAX_MEMORY_MIB = 512


@dataclass(frozen=True)
class Point:
    """One migration to run: the guest's writer, the migration's parameters, and the replicate number."""

    memory_mib: int
    pattern: str
    working_set_mib: int
    write_rate_mib_s: int
    technique: str
    cap_mib_s: int
    max_downtime_ms: int
    deadline_ms: int
    postcopy_switch: str = ""  # post-copy: start, round_1, after_5s
    compression_threads: int = 0  # precopy_compress
    autoconverge_initial_pct: int = 0  # precopy_autoconverge
    autoconverge_increment_pct: int = 0
    replicate: int = 0
    writer: str = "lab"  # one of WRITERS; a program rewrites `working_set_mib` flat out (write_rate_mib_s 0)
    continuous: bool = False  # the lab writer spreads each second's MiB over the second
    constant_pct: int = 0  # the share of each page the lab writer keeps zero (compressible data)
    image: str = "busybox"  # the guest image: busybox, or PROGRAM_IMAGE (with stress and stress-ng)
    link_mib_s: int = 0  # the link into the destination shaped to this rate (0: loopback unshaped, the cap binds)

    @property
    def config_id(self) -> str:
        # the fields added with the v2 grid and later count only when set, so the older grids' ids stay as they were
        fields = {k: v for k, v in asdict(self).items() if k not in _V2_DEFAULTS or v != _V2_DEFAULTS[k]}
        raw = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(raw.encode()).hexdigest()[:12]

    @property
    def workload(self) -> str:
        if self.pattern == "idle":
            return "idle"
        if self.writer != "lab":
            return f"{self.writer}-{self.working_set_mib}MiB"
        mode = ("-continuous" if self.continuous else "") + (f"-zero{self.constant_pct}" if self.constant_pct else "")
        return f"{self.pattern}{mode}-{self.working_set_mib}MiB@{self.write_rate_mib_s}"

    @property
    def data_pattern(self) -> str:
        """What the writer writes: random pages, pages partly zero, the same value again, or stress-ng's method."""
        if self.pattern == "idle":
            return ""
        if self.writer == "stress":
            return "same-value"
        if self.writer == "stress-ng":
            return STRESS_NG_METHOD
        return f"zero-{self.constant_pct}pct" if self.constant_pct else "random"

    @property
    def program(self) -> list[str]:
        """The command the guest runs for a program writer (empty for the lab's writer)."""
        size = f"{self.working_set_mib}M"
        if self.writer == "stress":
            return ["stress", "--vm", "1", "--vm-bytes", size, "--vm-keep"]
        if self.writer == "stress-ng":
            return ["stress-ng", "--vm", "1", "--vm-bytes", size, "--vm-keep", "--vm-method", STRESS_NG_METHOD]
        return []

    @property
    def nominal_rate_mib_s(self) -> float:
        return PROGRAM_RATE_GUESS_MIB_S if self.program else self.write_rate_mib_s

    @property
    def usable_mib_s(self) -> int:
        """What the migration can send per second: the cap, or the shaped link when it is slower."""
        return min(self.cap_mib_s, self.link_mib_s) if self.link_mib_s else self.cap_mib_s

    @property
    def budget_ratio(self) -> float:
        """Working set / what the link moves within the allowed downtime (usable bandwidth x downtime)."""
        return self.working_set_mib / (self.usable_mib_s * self.max_downtime_ms / 1000)

    def describe(self) -> str:
        extra = {"postcopy": f" switch {self.postcopy_switch}",
                 "precopy_compress": f" {self.compression_threads} thread(s)",
                 "precopy_autoconverge": f" {self.autoconverge_initial_pct}+{self.autoconverge_increment_pct}%"}
        link = f" link {self.link_mib_s} MiB/s" if self.link_mib_s else ""
        return (f"{self.memory_mib} MiB {self.workload} {self.technique}{extra.get(self.technique, '')} "
                f"cap {self.cap_mib_s} MiB/s{link} downtime {self.max_downtime_ms} ms "
                f"deadline {self.deadline_ms // 1000} s (ratio {self.budget_ratio:.1f})")


_V2_DEFAULTS = {"writer": "lab", "continuous": False, "constant_pct": 0, "image": "busybox", "link_mib_s": 0}


def _weighted(rng: random.Random, choices: tuple[tuple[T, float], ...]) -> T:
    return rng.choices([c for c, _ in choices], weights=[w for _, w in choices])[0]


def _draw(rng: random.Random, technique: str, idle: bool = False) -> Point:
    memory = rng.choice((128, 256, 256)) if not idle else rng.choice((128, 256))
    if idle:
        pattern, ws, rate = "idle", 0, 0
    else:
        pattern = _weighted(rng, (("steady", 0.55), ("bursty", 0.28), ("phased", 0.17)))
        sets = WORKING_SETS_MIB[memory]
        if pattern == "phased":
            sets = tuple(w for w in sets if w <= PHASED_MAX_MIB[memory])
        ws, rate = rng.choice(sets), rng.choice(WRITE_RATES_MIB_S)
    extra: dict[str, int | str] = {}
    if technique == "postcopy":
        extra["postcopy_switch"] = _weighted(rng, POSTCOPY_SWITCHES)
    elif technique == "precopy_compress":
        extra["compression_threads"] = _weighted(rng, COMPRESSION_THREADS)
    elif technique == "precopy_autoconverge":
        extra["autoconverge_initial_pct"], extra["autoconverge_increment_pct"] = _weighted(rng, AUTOCONVERGE)
    return Point(memory, pattern, ws, rate, technique, rng.choice(CAPS_MIB_S), _weighted(rng, DOWNTIMES_MS),
                 _weighted(rng, DEADLINES_MS), **extra)  # type: ignore[arg-type]


def _draw_in_band(rng: random.Random, technique: str, band: tuple[float, float]) -> Point:
    for _ in range(10_000):
        point = _draw(rng, technique)
        if band[0] <= point.budget_ratio < band[1]:
            return point
    raise RuntimeError(f"no {technique} point with a ratio in {band}")


def full_grid(seed: int) -> list[Point]:
    rng = random.Random(seed)
    points: list[Point] = []
    for technique in PRECOPY_TECHNIQUES:
        points += [_draw(rng, technique, idle=True) for _ in range(IDLE_PER_TECHNIQUE)]
        for band in RATIO_BANDS:
            points += [_draw_in_band(rng, technique, band) for _ in range(PER_BAND[technique])]
    points += [_draw(rng, "postcopy", idle=True) for _ in range(IDLE_PER_TECHNIQUE)]
    points += [_draw(rng, "postcopy") for _ in range(POSTCOPY_POINTS - IDLE_PER_TECHNIQUE)]
    return _ordered(_replicates(points), rng)


def tiny_grid(_seed: int) -> list[Point]:
    """Three short migrations of a 128 MiB guest for the test: one completes, one is aborted, one post-copy."""
    return [
        Point(128, "idle", 0, 0, "precopy", 64, 300, 20_000),
        Point(128, "steady", 16, 32, "precopy", 8, 100, 8_000),
        Point(128, "bursty", 8, 8, "postcopy", 32, 300, 20_000, postcopy_switch="start"),
    ]


def _draw_v2(rng: random.Random) -> Point:
    memory = _weighted(rng, V2_MEMORY)
    writer, continuous, constant = _weighted(rng, tuple(((w, c, k), p) for w, c, k, p in V2_WRITERS))
    sets = [w for w in V2_WORKING_SETS_MIB if w <= V2_MAX_WORKING_SET_MIB[memory]]
    if writer == "idle":
        pattern, ws, rate, writer = "idle", 0, 0, "lab"
    elif writer == "lab":
        pattern = _weighted(rng, (("steady", 0.7), ("bursty", 0.2), ("phased", 0.1)))
        if pattern == "phased":
            sets = [w for w in sets if 2 * w <= V2_MAX_WORKING_SET_MIB[memory]]
        ws, rate = rng.choice(sets), rng.choice(V2_RATES_MIB_S)
    else:
        pattern, ws, rate = "steady", rng.choice(sets), 0
    technique = _weighted(rng, V2_TECHNIQUES)
    extra: dict[str, int | str] = {}
    if technique == "postcopy":
        extra["postcopy_switch"] = _weighted(rng, (("start", 0.8), ("round_1", 0.2)))
    elif technique == "precopy_compress":
        extra["compression_threads"] = _weighted(rng, COMPRESSION_THREADS)
    elif technique == "precopy_autoconverge":
        extra["autoconverge_initial_pct"], extra["autoconverge_increment_pct"] = _weighted(rng, AUTOCONVERGE)
    return Point(memory, pattern, ws, rate, technique, rng.choice(CAPS_MIB_S), _weighted(rng, DOWNTIMES_MS),
                 _weighted(rng, V2_DEADLINES_MS), writer=writer, continuous=continuous, constant_pct=constant,
                 image=PROGRAM_IMAGE, **extra)  # type: ignore[arg-type]


def v2_grid(seed: int) -> list[Point]:
    """V2_POINTS points of the v2 design (see the module), in blocks of one memory size, sizes taking turns."""
    rng = random.Random(seed)
    points = _replicates([_draw_v2(rng) for _ in range(V2_POINTS)])
    return _ordered(points, rng, sizes=tuple(m for m, _ in V2_MEMORY), block=V2_BLOCK)


def tiny_v2_grid(_seed: int) -> list[Point]:
    """Four short migrations of a 256 MiB guest with programs, one per new writer, for the test."""
    image = PROGRAM_IMAGE
    return [
        Point(256, "steady", 32, 0, "precopy", 32, 300, 12_000, writer="stress", image=image),
        Point(256, "steady", 32, 0, "precopy_xbzrle", 32, 300, 12_000, writer="stress-ng", image=image),
        Point(256, "steady", 16, 8, "precopy_compress", 32, 300, 20_000, compression_threads=1, continuous=True,
              constant_pct=75, image=image),
        Point(256, "steady", 16, 8, "postcopy", 32, 300, 20_000, postcopy_switch="start", continuous=True,
              image=image),
    ]


def links_grid(seed: int) -> list[Point]:
    """LINK_POINTS v2 points over shaped links: every (technique, link rate) pair once, the rest drawn at random;
    the point itself drawn as in v2 until its technique is the one wanted (so its extras fit), the cap above it."""
    rng = random.Random(seed)
    pairs = [(t, link) for t, _ in V2_TECHNIQUES for link in LINK_RATES_MIB_S]
    pairs += [rng.choice(pairs) for _ in range(LINK_POINTS - len(pairs))]
    points = []
    for technique, link in pairs:
        point = _draw_v2(rng)
        while point.technique != technique:
            point = _draw_v2(rng)
        cap = rng.choice([c for c in LINK_CAPS_MIB_S if c > link])
        points.append(Point(**{**asdict(point), "cap_mib_s": cap, "link_mib_s": link}))
    return _ordered(_replicates(points), rng, sizes=tuple(m for m, _ in V2_MEMORY), block=V2_BLOCK)


def tiny_links_grid(_seed: int) -> list[Point]:
    """The same short migration at cap 64 MiB/s, over loopback and over a link shaped to 8 MiB/s, for the test: a
    256 MiB guest whose writer holds 64 MiB and rewrites 2 MiB/s (pre-copy converges on either). The link is well
    below what TCG sends over loopback even on a busy machine (15 MiB/s at a load of 8, 40-60 MiB/s when quiet)."""
    plain = Point(256, "steady", 64, 2, "precopy", 64, 300, 60_000, continuous=True)
    return [plain, Point(**{**asdict(plain), "link_mib_s": 8})]


def repeats_grid(seed: int) -> list[Point]:
    """REPEAT_CONFIGS v2 points of 256 or 512 MiB that should complete, every technique among them, each run
    REPEATS times, in random order within each memory size (the 256 MiB runs first: a size change reboots the
    guest; the shuffle before `_ordered` is kept, as the committed runs were ordered with it): how far the same
    migration's time, downtime and data vary on this machine, the least error any prediction from the same inputs
    leaves (`python -m training.few_shot --repeats`)."""
    rng = random.Random(seed)
    chosen: list[Point] = []
    techniques = [t for t, _ in V2_TECHNIQUES]
    while len(chosen) < REPEAT_CONFIGS:
        point = _draw_v2(rng)
        wanted = techniques[len(chosen) % len(techniques)]
        if point.technique == wanted and point.memory_mib <= REPEAT_MAX_MEMORY_MIB and converges_roughly(point):
            chosen.append(point)
    points = _replicates([p for p in chosen for _ in range(REPEATS)])
    rng.shuffle(points)
    return _ordered(points, rng, sizes=(256, 512), block=len(points))


GRIDS: dict[str, Callable[[int], list[Point]]] = {"full": full_grid, "tiny": tiny_grid, "v2": v2_grid,
                                                  "tiny-v2": tiny_v2_grid, "links": links_grid,
                                                  "tiny-links": tiny_links_grid, "repeats": repeats_grid}


def _replicates(points: list[Point]) -> list[Point]:
    """Number points drawn twice with the same settings, so every config_id is unique."""
    seen: dict[Point, int] = {}
    out = []
    for point in points:
        n = seen.get(point, 0)
        seen[point] = n + 1
        out.append(point if n == 0 else Point(**{**asdict(point), "replicate": n}))
    return out


def _ordered(points: list[Point], rng: random.Random, sizes: tuple[int, ...] = (128, 256),
             block: int = BLOCK) -> list[Point]:
    """Blocks of `block` points of one memory size, sizes taking turns, shuffled inside."""
    by_memory = {m: [p for p in points if p.memory_mib == m] for m in sizes}
    for group in by_memory.values():
        rng.shuffle(group)
    out: list[Point] = []
    while any(by_memory.values()):
        for memory in sizes:
            out += by_memory[memory][:block]
            del by_memory[memory][:block]
    return out


def converges_roughly(point: Point) -> bool:
    """A crude guess, for the time estimate only: pre-copy keeps up when the rate is below the cap or the whole
    working set fits in the downtime budget; auto-converge and post-copy always end."""
    if point.technique in ("postcopy", "precopy_autoconverge") or point.pattern == "idle":
        return True
    rate = point.nominal_rate_mib_s / 2 if point.pattern == "bursty" else point.nominal_rate_mib_s
    return point.budget_ratio <= 1 or rate < 0.8 * point.usable_mib_s


def estimate_s(point: Point) -> float:
    """Rough wall time of one point: the overhead plus the copy, or the deadline when it will not converge."""
    overhead = OVERHEAD_S + (PROGRAM_START_S if point.program else 0.0)
    if not converges_roughly(point):
        return overhead + point.deadline_ms / 1000
    idle = (V2_IDLE_NONZERO_MIB if point.image == PROGRAM_IMAGE else IDLE_NONZERO_MIB)[point.memory_mib]
    copy = (idle + point.working_set_mib) / point.usable_mib_s
    if point.technique == "precopy_autoconverge" and not (point.budget_ratio <= 1
                                                          or point.nominal_rate_mib_s < point.usable_mib_s):
        copy *= 3  # rounds until the throttle bites
    return overhead + min(point.deadline_ms / 1000, copy * 1.3)
