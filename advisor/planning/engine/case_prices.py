"""A plan's moves priced in the sharing cases their schedules start them in, and only those.

A move that starts while others run on its source or target gets a share of the links (schedule.py), so its cost
depends on the case it starts in: `shared_bandwidths` lists them (per_source x per_target; case 0 is the move
alone). Pricing every case of every move doubles what a plan prices (most moves' other cases share one bandwidth,
half the link), while a schedule takes one case per move, and a balance over thousands of hosts starts nearly every
move alone. So each move is priced alone first; the median and p90 schedules are made, a case not priced yet
standing in at the move's cost alone; the cases they took that were not priced are priced, and the schedules made
again, until every case taken was priced. A schedule reads only the durations of the cases it takes, so the last
ones are those of every case priced; after MAX_ROUNDS the cases left are priced at once.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from advisor.planning.engine.costs import CostStore
from advisor.planning.engine.estimates import CostEstimates
from advisor.planning.engine.schedule import Concurrency, Schedule, schedule, shared_bandwidths
from advisor.planning.engine.snapshot import FloatArray, IntArray

# (VMs, targets, bandwidths) -> their estimates, row for row
Price = Callable[[IntArray, IntArray, FloatArray], CostEstimates]
MAX_ROUNDS = 4  # rounds of pricing the cases taken before every case left is priced at once


class CasePrices:
    """The moves (`vms` from `sources` to `targets`, in plan order) and what has been priced of their cases."""

    def __init__(self, price: Price, vms: IntArray, sources: IntArray, targets: IntArray, links: FloatArray,
                 limits: Concurrency) -> None:
        self._price, self._vms, self._sources, self._targets, self._limits = price, vms, sources, targets, limits
        self._cases = limits.per_source * limits.per_target
        self._shares = shared_bandwidths(links[sources], links[targets], limits).reshape(len(vms), self._cases)
        self._store = CostStore()
        self._row = np.full((len(vms), self._cases), -1, dtype=np.int64)  # each case's row in the store; -1: none
        self._add(np.arange(len(vms), dtype=np.int64) * self._cases)

    def _add(self, cells: IntArray) -> None:
        """Price these cases (move x cases + case), each distinct (VM, target, bandwidth) once."""
        moves, case = np.divmod(cells, self._cases)
        vms, targets, shares = self._vms[moves], self._targets[moves], self._shares[moves, case]
        rows = np.stack([vms, targets, shares.view(np.int64)], axis=1)
        _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
        order = np.argsort(first)  # in the order of their first case
        position = np.empty_like(order)
        position[order] = np.arange(order.shape[0])
        picked = first[order]
        priced = self._price(vms[picked], targets[picked], shares[picked]).take(position[inverse.ravel()])
        base = self._store.append(priced)
        self._row.reshape(-1)[cells] = base + np.arange(cells.shape[0])

    def alone(self) -> CostEstimates:
        """Each move's cost alone on its links (case 0)."""
        return self._store.take(self._row[:, 0])

    def schedules(self, order: IntArray) -> tuple[Schedule, Schedule, CostEstimates]:
        """The median and p90 schedules of the moves taken in `order`, each move at the share of the case it starts
        in, and the estimates of the case each starts in in the median schedule (a row per move, in `order`)."""
        limits, n = self._limits, order.shape[0]
        sources, targets = self._sources[order], self._targets[order]
        rounds = 0
        while True:
            rows = self._row[order]
            stand_in = np.where(rows >= 0, rows, rows[:, :1])  # a case not priced yet: the move alone
            seconds = self._store.column("total_ms", stand_in.ravel()).reshape(
                n, limits.per_source, limits.per_target, 3) / 1000
            median = schedule(sources, targets, seconds[..., 1], limits)
            p90 = schedule(sources, targets, seconds[..., 2], limits)
            assert median.case is not None and p90.case is not None
            taken = np.concatenate([order * self._cases + median.case, order * self._cases + p90.case])
            missing = np.unique(taken[self._row.reshape(-1)[taken] < 0])
            if not missing.shape[0]:
                return median, p90, self._store.take(rows[np.arange(n), median.case])
            rounds += 1
            self._add(missing if rounds < MAX_ROUNDS else np.flatnonzero(self._row.reshape(-1) < 0))
