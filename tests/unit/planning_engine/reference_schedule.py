"""The list scheduling of advisor.planning.engine.schedule as it was written in Python (heapq of (end, move)
tuples), the reference its compiled loop is held to: each move's start, duration and sharing case."""

from __future__ import annotations

import heapq
from collections import Counter

import numpy as np

from advisor.planning.engine.schedule import Concurrency, _per_case
from advisor.planning.engine.snapshot import FloatArray, IntArray


def list_schedule(sources: IntArray, targets: IntArray, durations_s: FloatArray,
                  limits: Concurrency) -> tuple[list[float], list[float], list[int]]:
    n = len(sources)
    src, tgt = np.asarray(sources).tolist(), np.asarray(targets).tolist()
    cases = _per_case(durations_s, limits).tolist()
    dur, case, start = [0.0] * n, [0] * n, [0.0] * n
    seen: Counter[int] = Counter()
    out_before = []
    for s, t in zip(src, tgt, strict=True):
        out_before.append(seen[t])
        seen[s] += 1
    done_out: Counter[int] = Counter()
    run_src: Counter[int] = Counter()
    run_tgt: Counter[int] = Counter()
    running: list[tuple[float, int]] = []
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
            raise RuntimeError("schedule stalled")
        now, j = heapq.heappop(running)
        ended = [j]
        while running and running[0][0] <= now:
            ended.append(heapq.heappop(running)[1])
        for j in ended:
            run_src[src[j]] -= 1
            run_tgt[tgt[j]] -= 1
            done_out[src[j]] += 1
    return start, dur, case
