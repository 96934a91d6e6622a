"""A plan's moves priced only in the sharing cases their schedules take: the same schedules and costs as pricing
every case of every move, for fewer rows priced."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.planning.engine import AnalyticMoveCosts, Concurrency, CostEstimates, CostRequest, schedule
from advisor.planning.engine.case_prices import CasePrices
from advisor.planning.engine.schedule import Schedule, shared_bandwidths
from advisor.planning.engine.snapshot import FloatArray, IntArray

LINKS = np.array([1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 1000.0, 500.0, 500.0, 2000.0, 2000.0, 2000.0, 2000.0])


class Pricing:
    """The analytic costs of each VM (its memory and dirty rate by index), counting the rows asked for."""

    def __init__(self) -> None:
        self.rows = 0

    def __call__(self, vms: IntArray, targets: IntArray, bandwidth: FloatArray) -> CostEstimates:
        self.rows += len(vms)
        n = len(vms)
        return AnalyticMoveCosts().estimate(CostRequest(
            vms, targets, 2048.0 + 1024.0 * vms, 5.0 + 3.0 * vms, bandwidth, np.ones(n, dtype=bool)))


def every_case(vms: IntArray, sources: IntArray, targets: IntArray, order: IntArray, limits: Concurrency
               ) -> tuple[Schedule, Schedule, CostEstimates]:
    """What a plan did before: every case of every move priced in one request, then both schedules."""
    cases = limits.per_source * limits.per_target
    shares = shared_bandwidths(LINKS[sources], LINKS[targets], limits).ravel()
    every = Pricing()(np.repeat(vms, cases), np.repeat(targets, cases), shares)
    shared = every.take((order[:, None] * cases + np.arange(cases)).ravel())
    table = shared.total_ms.reshape(len(order), limits.per_source, limits.per_target, 3) / 1000
    median = schedule(sources[order], targets[order], table[..., 1], limits)
    p90 = schedule(sources[order], targets[order], table[..., 2], limits)
    assert median.case is not None
    return median, p90, shared.take(np.arange(len(order)) * cases + median.case)


@pytest.mark.parametrize(("moves", "limits"), [
    # six moves out of one host: the second starts beside the first, on half the source's link
    ([(0, 1), (0, 2), (0, 3), (0, 4), (0, 5), (0, 8)], Concurrency()),
    # into one host, out of hosts of other links: shares of the target's link
    ([(1, 0), (6, 0), (8, 0), (9, 0), (2, 0)], Concurrency()),
    # a mix, three per source and target allowed
    ([(0, 1), (0, 6), (1, 0), (6, 0), (8, 9), (8, 10), (9, 8), (10, 11), (11, 8), (0, 11)], Concurrency(3, 3, 5)),
], ids=["one source", "one target", "mixed"])
@pytest.mark.parametrize("longest_first", [False, True])
def test_the_schedules_and_costs_are_those_of_every_case_priced(moves: list[tuple[int, int]], limits: Concurrency,
                                                                longest_first: bool) -> None:
    sources, targets = (np.array(c, dtype=np.int64) for c in zip(*moves, strict=True))
    vms = np.arange(len(moves), dtype=np.int64)
    pricing = Pricing()
    prices = CasePrices(pricing, vms, sources, targets, LINKS, limits)
    order = np.argsort(-prices.alone().total_ms[:, 2], kind="stable") if longest_first else np.arange(len(moves))
    median, p90, taken = prices.schedules(order)
    want_median, want_p90, want_taken = every_case(vms, sources, targets, order, limits)
    for got, want in ((median, want_median), (p90, want_p90)):
        assert got.start_s.tolist() == want.start_s.tolist()
        assert got.end_s.tolist() == want.end_s.tolist()
        assert got.case is not None and want.case is not None
        assert got.case.tolist() == want.case.tolist()
    assert median.case is not None and median.case.any()  # some moves did share a link
    for field in ("technique", "total_ms", "downtime_ms", "data_mib", "bandwidth_mib_s", "p_converge"):
        assert getattr(taken, field).tolist() == getattr(want_taken, field).tolist()


def test_moves_that_start_alone_are_priced_once() -> None:
    # four moves on hosts of their own: each starts alone, nothing else is priced
    sources, targets = np.array([0, 2, 4, 6], dtype=np.int64), np.array([1, 3, 5, 7], dtype=np.int64)
    pricing = Pricing()
    median, _, taken = CasePrices(pricing, np.arange(4, dtype=np.int64), sources, targets, LINKS,
                                  Concurrency()).schedules(np.arange(4))
    assert pricing.rows == 4
    assert median.case is not None and not median.case.any()
    assert taken.bandwidth_mib_s.tolist() == [1000.0, 1000.0, 1000.0, 500.0]


def test_a_case_shared_by_several_moves_at_one_bandwidth_is_priced_once_per_move() -> None:
    # three moves out of host 0, two at a time: the second and third start beside another, at half the link
    sources, targets = np.zeros(3, dtype=np.int64), np.array([1, 2, 3], dtype=np.int64)
    pricing = Pricing()
    median, _, taken = CasePrices(pricing, np.arange(3, dtype=np.int64), sources, targets, LINKS,
                                  Concurrency()).schedules(np.arange(3))
    assert median.case is not None and median.case.tolist()[1] > 0
    assert 500.0 in taken.bandwidth_mib_s.tolist()
    assert pricing.rows < 3 * 4  # fewer than every case of every move
