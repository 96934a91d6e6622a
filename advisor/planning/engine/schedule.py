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

from dataclasses import dataclass
from typing import Any

import numba
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


def _per_case(durations_s: FloatArray, limits: Concurrency) -> FloatArray:
    """Each move's duration in each sharing case, flattened (per_source x per_target)."""
    table = np.maximum(np.asarray(durations_s, dtype=np.float64), 0.0)
    if table.ndim == 1:
        table = np.broadcast_to(table[:, None, None], (table.shape[0], limits.per_source, limits.per_target))
    return np.ascontiguousarray(table.reshape(table.shape[0], -1))


def schedule(sources: IntArray, targets: IntArray, durations_s: FloatArray,
             limits: Concurrency = Concurrency()) -> Schedule:
    """`durations_s` is one per move (n,), a move alone on its links, or one per sharing case (n, per_source,
    per_target) as `shared_bandwidths` lists them: then each move takes the case it starts in."""
    n = len(sources)
    if n == 0:
        return Schedule.empty()
    _, host = np.unique(np.concatenate([sources, targets]), return_inverse=True)  # host ids as 0, 1, ...
    start, dur, case = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
    _list_schedule(host[:n], host[n:], _per_case(durations_s, limits), limits.per_source, limits.per_target,
                   limits.cluster, start, dur, case)
    ends = start + dur
    wave = waves(np.asarray(sources), np.asarray(targets), limits)
    slowest = np.zeros(int(wave.max()) + 1)
    np.maximum.at(slowest, wave, dur)
    return Schedule(start, ends, wave, float(ends.max()), int(wave.max()) + 1, float(slowest.sum()), case)


@numba.njit(cache=True, nogil=True)
def _list_schedule(src: Any, tgt: Any, cases: Any, per_source: int, per_target: int, cluster: int, start: Any,
                   dur: Any, case: Any) -> None:  # pragma: no cover - compiled
    """Each move's start, duration and sharing case by list scheduling (the module docstring), hosts numbered
    0, 1, ...: the running moves a heap of (end, move) ordered as Python's heapq orders those tuples (`_before`),
    so that ties, infinities and NaN end where they did when this loop was Python's."""
    n, hosts = src.shape[0], max(src.max(), tgt.max()) + 1
    out_before = np.empty(n, dtype=np.int64)  # earlier moves out of each move's target: done before it starts
    done_out = np.zeros(hosts, dtype=np.int64)
    for j in range(n):
        out_before[j] = done_out[tgt[j]]
        done_out[src[j]] += 1
    done_out[:] = 0
    run_src, run_tgt = np.zeros(hosts, dtype=np.int64), np.zeros(hosts, dtype=np.int64)
    room = max(min(cluster, n), 0)
    ends, moves, running = np.empty(room), np.empty(room, dtype=np.int64), 0
    pending, n_pending = np.arange(n), n
    now, remaining = 0.0, n
    while remaining:
        if running < cluster:
            kept = 0
            for k in range(n_pending):
                j = pending[k]
                s, t = src[j], tgt[j]
                if running < cluster and run_src[s] < per_source and run_tgt[t] < per_target \
                        and done_out[t] >= out_before[j]:
                    start[j] = now
                    run_src[s] += 1
                    run_tgt[t] += 1
                    case[j] = (run_src[s] - 1) * per_target + run_tgt[t] - 1
                    dur[j] = cases[j, case[j]]
                    running = _push(ends, moves, running, now + dur[j], j)
                    remaining -= 1
                else:
                    pending[kept] = j
                    kept += 1
            n_pending = kept
        if running == 0:
            raise RuntimeError("schedule stalled")  # cannot happen: the first pending move's dependencies are done
        now = ends[0]
        ended = True
        while ended:  # the first to end, then everything ending at the same instant
            j = moves[0]
            running = _pop(ends, moves, running)
            run_src[src[j]] -= 1
            run_tgt[tgt[j]] -= 1
            done_out[src[j]] += 1
            ended = running > 0 and ends[0] <= now


@numba.njit(cache=True, nogil=True)
def _before(end_a: float, a: int, end_b: float, b: int) -> bool:  # pragma: no cover - compiled
    """(end_a, a) < (end_b, b) as Python compares tuples: the first items unequal (NaN equals nothing) decide."""
    return end_a < end_b if end_a != end_b else a < b


@numba.njit(cache=True, nogil=True)
def _sift_down(ends: Any, moves: Any, pos: int) -> None:  # pragma: no cover - compiled
    """heapq._siftdown(heap, 0, pos)."""
    end, move = ends[pos], moves[pos]
    while pos > 0:
        parent = (pos - 1) >> 1
        if not _before(end, move, ends[parent], moves[parent]):
            break
        ends[pos], moves[pos] = ends[parent], moves[parent]
        pos = parent
    ends[pos], moves[pos] = end, move


@numba.njit(cache=True, nogil=True)
def _push(ends: Any, moves: Any, size: int, end: float, move: int) -> int:  # pragma: no cover - compiled
    """heapq.heappush of (end, move) on a heap of `size`; returns the new size."""
    ends[size], moves[size] = end, move
    _sift_down(ends, moves, size)
    return size + 1


@numba.njit(cache=True, nogil=True)
def _pop(ends: Any, moves: Any, size: int) -> int:  # pragma: no cover - compiled
    """heapq.heappop, the smallest item dropped (read it at [0] first); returns the new size."""
    size -= 1
    if size == 0:
        return 0
    ends[0], moves[0] = ends[size], moves[size]
    end, move, pos = ends[0], moves[0], 0  # heapq._siftup(heap, 0): the smaller child up to a leaf, then down
    child = 1
    while child < size:
        if child + 1 < size and not _before(ends[child], moves[child], ends[child + 1], moves[child + 1]):
            child += 1
        ends[pos], moves[pos] = ends[child], moves[child]
        pos, child = child, 2 * child + 1
    ends[pos], moves[pos] = end, move
    _sift_down(ends, moves, pos)
    return size
