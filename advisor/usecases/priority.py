"""Calls a scheduler waits on (RecommendTarget, PlaceVm) go before bulk work (storing pushed samples, updating the
cluster snapshot) in this process.

They share one interpreter lock. A thread storing samples in Python holds it for a whole switch interval (5 ms)
each time a recommendation's thread gives it up, which it does at every SQLite statement: a recommendation of
3 ms of CPU took 10 ms at the median and 80 ms at p99 while samples streamed in. So bulk work, between small
pieces, gives way (`give_way`): while an urgent call is in flight it waits, without the interpreter lock, until
none is, at most `max_wait_s` a piece (20 ms: longer than most urgent calls, so that one waits for none of it;
short enough that under a steady stream of urgent calls bulk work still gets a twentieth of a core, a piece of
`PIECE_S` each time). The gate is one per process (`URGENT`), as the interpreter lock it shares out is.

Bulk work must not give way while it holds a lock an urgent call may need (the inventory's, the samples'): the
urgent call would wait for it as it waits for the urgent call. A thread in an urgent call never gives way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol, Self, TypeVar


class Sliceable(Protocol):
    """What `in_pieces` cuts: a sequence, or columns of samples."""

    def __len__(self) -> int: ...

    def __getitem__(self, at: slice, /) -> Self: ...


S = TypeVar("S", bound=Sliceable)

# CPU time of one piece of bulk work (`in_pieces`): well under the switch interval. Measured in turns on a quiet
# machine (2026-12-07, load 0.6-3): beside back-to-back recommendations while samples stream (benchmarks/bench_api.py)
# RecommendTarget's p99 was 21.0-30.5 ms at 2 ms (3 runs), 18.0-21.4 at 1 ms (5) and 15.5-23.2 at 1.5 ms (4), with
# 41,900-47,400, 38,500-44,600 and 44,100-52,000 samples/s getting in; under 32 clients (bench_load.py) pushes'
# p99 was 0.62-0.67 s at 2 ms, 0.78-0.84 s at 1 ms (2 pushes over 1 s in one run of 2), 0.68-0.71 s at 1.5 ms.
PIECE_S = 0.0015


class Priority:
    def __init__(self, max_wait_s: float = 0.02) -> None:
        self._max_wait_s = max_wait_s
        self._changed = threading.Condition()
        self._urgent = 0  # calls in flight
        self._mine = threading.local()  # how deep this thread is in urgent calls

    @contextmanager
    def urgent(self) -> Iterator[None]:
        """Around a call that bulk work gives way to."""
        self._mine.depth = getattr(self._mine, "depth", 0) + 1
        with self._changed:
            self._urgent += 1
        try:
            yield
        finally:
            self._mine.depth -= 1
            with self._changed:
                self._urgent -= 1
                if not self._urgent:
                    self._changed.notify_all()

    def give_way(self, unless: Callable[[], bool] = lambda: False) -> None:
        """Wait while an urgent call is in flight (at most `max_wait_s`), or until `unless()` holds once woken
        (`wake`): an urgent call waits for what this thread holds."""
        inside: int = getattr(self._mine, "depth", 0)
        if not self._urgent or inside:  # read without the lock: the common case costs nothing
            return
        with self._changed:
            self._changed.wait_for(lambda: not self._urgent or unless(), timeout=self._max_wait_s)

    def in_pieces(self, items: S, work: Callable[[S], object], *, first: int = 20, most: int = 1000) -> None:
        """`work` over consecutive slices of `items`, giving way before each; slices are sized from the last
        one's CPU time to take about PIECE_S (a VM sample stored takes about 1 us as columns, 5 as an object, 60 out
        of time order)."""
        start, size = 0, first
        while start < len(items):
            self.give_way()
            began = time.thread_time()
            work(items[start : start + size])
            start += size
            took = time.thread_time() - began
            size = max(1, min(most, 2 * size, int(size * PIECE_S / took) if took > 0 else most))

    def wake(self) -> None:
        """Wake the bulk work giving way, to look at its `unless` again."""
        with self._changed:
            self._changed.notify_all()


URGENT = Priority()
