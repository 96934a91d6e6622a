"""Ordering a plan's moves under concurrency limits, and how long the plan takes.

List scheduling in plan order: a move starts as soon as its source, its target and the cluster each have a free
slot (defaults 2 / 2 / 5, the executor's and KubeVirt's), and, when its target is the source of earlier moves, once
those have finished (the room it needs may be the room they free). A later move may start before an earlier one
that is blocked (backfilling). The duration is when the last move ends: what the executor, which starts a queued
move as soon as a slot frees, achieves if the predictions hold.

Links are shared. A move that starts while others run on its source or target gets its share of the links by the
rule the executor gives it by (planning.links.link_share): the lower of the source's link over the moves then out
of it and the target's over the moves then into it. `shared_bandwidths` lists the bandwidth of every case (how many
share the source, how many the target); given durations priced for each case, a move takes the one of the case it
starts in.
A running move keeps the bandwidth it started with (the executor does not re-pace a running migration).

Waves are the same limits as batches with a barrier, as an operator reads a plan: wave 1 holds the first moves
that fit together, wave 2 the next, a move never sharing a wave with a move it waits for. `barrier_s`, the sum of
each wave's slowest move, is the duration if every wave waited for its slowest move.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass

import numpy as np

from advisor.planning.engine.snapshot import FloatArray, IntArray
from advisor.planning.links import link_share


@dataclass(frozen=True)
class Concurrency:
    per_source: int = 2
    per_target: int = 2
    cluster: int = 5


@dataclass(frozen=True)
class Schedule:
    start_s: FloatArray
    end_s: FloatArray
    wave: IntArray  # 0-based barrier wave
    duration_s: float
    waves: int
    barrier_s: float = 0.0
    # The sharing case each move started in: index into the last two axes of `shared_bandwidths`, flattened.
    case: IntArray | None = None

    @staticmethod
    def empty() -> Schedule:
        return Schedule(np.zeros(0), np.zeros(0), np.zeros(0, dtype=np.int64), 0.0, 0, case=np.zeros(0, np.int64))


def shared_bandwidths(source_mib_s: FloatArray, target_mib_s: FloatArray,
                      limits: Concurrency = Concurrency()) -> FloatArray:
    """Each move's bandwidth (n, per_source, per_target) when a moves share its source's link and b its target's
    ([.., a - 1, b - 1]), by `link_share`. The links are each host's migration bandwidth."""
    a = np.arange(1, limits.per_source + 1, dtype=np.float64)[None, :, None]
    b = np.arange(1, limits.per_target + 1, dtype=np.float64)[None, None, :]
    return link_share(np.asarray(source_mib_s, np.float64)[:, None, None],
                      np.asarray(target_mib_s, np.float64)[:, None, None], a, b)


def waves(sources: IntArray, targets: IntArray, limits: Concurrency = Concurrency()) -> IntArray:
    """The barrier wave of each move, in plan order (see the module docstring)."""
    src, tgt = np.asarray(sources).tolist(), np.asarray(targets).tolist()
    size: list[int] = []
    per_src: dict[tuple[int, int], int] = {}
    per_tgt: dict[tuple[int, int], int] = {}
    last_out: dict[int, int] = {}  # latest wave of a move out of each host
    first_open = 0
    wave = []
    for s, t in zip(src, tgt, strict=True):
        k = max(first_open, last_out.get(t, -1) + 1)
        while (k < len(size) and size[k] >= limits.cluster) or per_src.get((k, s), 0) >= limits.per_source \
                or per_tgt.get((k, t), 0) >= limits.per_target:
            k += 1
        while len(size) <= k:
            size.append(0)
        size[k] += 1
        per_src[(k, s)] = per_src.get((k, s), 0) + 1
        per_tgt[(k, t)] = per_tgt.get((k, t), 0) + 1
        last_out[s] = max(last_out.get(s, -1), k)
        while first_open < len(size) and size[first_open] >= limits.cluster:
            first_open += 1
        wave.append(k)
    return np.array(wave, dtype=np.int64)


def _per_case(durations_s: FloatArray, limits: Concurrency) -> list[list[float]]:
    """Each move's duration in each sharing case, flattened (per_source x per_target)."""
    table = np.maximum(np.asarray(durations_s, dtype=np.float64), 0.0)
    if table.ndim == 1:
        table = np.broadcast_to(table[:, None, None], (table.shape[0], limits.per_source, limits.per_target))
    cases: list[list[float]] = table.reshape(table.shape[0], -1).tolist()
    return cases


def _out_before(src: list[int], tgt: list[int]) -> list[int]:
    """How many earlier moves leave each move's target: they must be done before it starts."""
    seen: Counter[int] = Counter()
    out_before = []
    for s, t in zip(src, tgt, strict=True):
        out_before.append(seen[t])
        seen[s] += 1
    return out_before


def schedule(sources: IntArray, targets: IntArray, durations_s: FloatArray,
             limits: Concurrency = Concurrency()) -> Schedule:
    """`durations_s` is one per move (n,), a move alone on its links, or one per sharing case (n, per_source,
    per_target) as `shared_bandwidths` lists them: then each move takes the case it starts in."""
    n = len(sources)
    if n == 0:
        return Schedule.empty()
    src, tgt = np.asarray(sources).tolist(), np.asarray(targets).tolist()
    cases = _per_case(durations_s, limits)
    dur = [0.0] * n
    case = [0] * n
    out_before = _out_before(src, tgt)
    done_out: Counter[int] = Counter()
    run_src: Counter[int] = Counter()
    run_tgt: Counter[int] = Counter()
    running: list[tuple[float, int]] = []
    start = [0.0] * n
    pending = list(range(n))
    now = 0.0
    remaining = n
    while remaining:
        if len(running) < limits.cluster:
            kept = []
            for k, j in enumerate(pending):
                if len(running) >= limits.cluster:
                    kept.extend(pending[k:])
                    break
                s, t = src[j], tgt[j]
                if run_src[s] < limits.per_source and run_tgt[t] < limits.per_target and done_out[t] >= out_before[j]:
                    start[j] = now
                    run_src[s] += 1
                    run_tgt[t] += 1
                    case[j] = (run_src[s] - 1) * limits.per_target + run_tgt[t] - 1
                    dur[j] = cases[j][case[j]]
                    heapq.heappush(running, (now + dur[j], j))
                    remaining -= 1
                else:
                    kept.append(j)
            pending = kept
        if not running:
            raise RuntimeError("schedule stalled")  # cannot happen: the first pending move's dependencies are done
        now, j = heapq.heappop(running)
        ended = [j]
        while running and running[0][0] <= now:  # everything ending at the same instant
            ended.append(heapq.heappop(running)[1])
        for j in ended:
            run_src[src[j]] -= 1
            run_tgt[tgt[j]] -= 1
            done_out[src[j]] += 1
    starts = np.array(start)
    ends = starts + np.array(dur)
    wave = waves(np.asarray(sources), np.asarray(targets), limits)
    slowest = np.zeros(int(wave.max()) + 1)
    np.maximum.at(slowest, wave, np.array(dur))
    return Schedule(starts, ends, wave, float(ends.max()), int(wave.max()) + 1, float(slowest.sum()),
                    np.array(case, dtype=np.int64))
