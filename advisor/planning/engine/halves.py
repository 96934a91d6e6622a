"""Large batches costed in two halves at once, one half on a worker thread.

Most of a ranking request's time is the served model's trees, a compiled loop that runs without the GIL
(advisor.ml.trees); the rest (features, the technique choice) is numpy, which mostly does too. On the two cores
the advisor has, the two halves of a request overlap, and a rebalance at 10,000 hosts ranks 10^5 rows. A row's cost
depends on that row alone (its features, the trees, the technique choice), so the halves put together are the whole
batch's costs, bit for bit (tests/unit/planning_engine/test_halves.py).
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields, replace
from typing import Any, TypeVar

import numpy as np

from advisor.planning.engine.costs import CostEstimates, CostRequest, MoveCosts

T = TypeVar("T")
# Below this many rows the hand-over to the worker costs more than the half it saves.
MIN_ROWS = 256
_WORKER_NAME = "plan-costs"  # the worker's threads are named from it


@functools.cache
def _worker() -> ThreadPoolExecutor:
    """One idle thread for the whole process, started when first needed."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix=_WORKER_NAME)


os.register_at_fork(after_in_child=_worker.cache_clear)  # a forked child has not the parent's thread: its own then


def in_halves(n: int, work: Callable[[slice], T]) -> tuple[T, ...]:
    """`work` of rows [0, n): one call when n is small, else the first half on the worker thread while this one
    does the second; the results in row order. Called on the worker itself (work that halves again), it does it all:
    waiting there for the one worker would wait forever."""
    if n < MIN_ROWS or threading.current_thread().name.startswith(_WORKER_NAME):
        return (work(slice(0, n)),)
    half = n // 2
    first = _worker().submit(work, slice(0, half))
    second = work(slice(half, n))
    return first.result(), second


def request_rows(request: CostRequest, rows: slice) -> CostRequest:
    """The request of these rows alone (every per-row column cut, the limits kept)."""
    n = len(request)
    columns: dict[str, Any] = {f.name: value[rows] for f in fields(request)
                               if isinstance(value := getattr(request, f.name), np.ndarray) and value.shape[:1] == (n,)}
    return replace(request, **columns)


class HalvedMoveCosts:
    """A MoveCosts whose rows are costed independently of one another (as `LearnedMoveCosts` and
    `AnalyticMoveCosts` cost them), asked in two halves at once (`in_halves`)."""

    def __init__(self, inner: MoveCosts) -> None:
        self.inner = inner

    @property
    def name(self) -> str:
        return self.inner.name

    def estimate(self, request: CostRequest) -> CostEstimates:
        parts = in_halves(len(request), lambda rows: self.inner.estimate(request_rows(request, rows)))
        return parts[0] if len(parts) == 1 else CostEstimates.concat(parts)
