"""Large cost batches in two halves at once: the halves put together are the whole batch's costs, bit for bit, and
plans made with them are the plans made without."""

from __future__ import annotations

import os
import select
import signal
from dataclasses import fields

import numpy as np
import pytest

from advisor.evaluation.costs import LearnedMoveCosts, learned_predictor
from advisor.planning.engine import AnalyticMoveCosts, CostEstimates, CostRequest, MoveCosts, halves, plan
from advisor.planning.engine.halves import HalvedMoveCosts, in_halves, request_rows
from tests.unit.planning_engine.helpers import COSTS
from tests.unit.planning_engine.test_cold_rule import digest
from tests.unit.planning_engine.test_plan_digests import BEFORE, SETTINGS, _cluster


def _request(n: int) -> CostRequest:
    """Varied rows: dirty rates measured or not, local disks on some, cold asked for by some."""
    rng = np.random.default_rng(3)
    disk = np.where(rng.random(n) < 0.2, rng.uniform(1024, 8192, n), 0.0)
    return CostRequest(np.arange(n), rng.integers(0, 50, n), rng.uniform(512, 32768, n), rng.uniform(0, 400, n),
                       rng.choice([117.0, 1250.0, 2500.0], n), rng.random(n) < 0.7, max_downtime_ms=500.0,
                       memory_configured_mib=np.full(n, 32768.0), disk_used_mib=disk, disk_size_mib=disk * 2,
                       disk_write_rate_mib_s=np.where(disk > 0, rng.uniform(0, 50, n), np.nan),
                       cold=rng.random(n) < 0.05, dirty_rate_known=rng.random(n) < 0.9,
                       resident_memory_mib=np.where(rng.random(n) < 0.5, rng.uniform(512, 32768, n), np.nan))


def _same(a: CostEstimates, b: CostEstimates) -> None:
    assert a.model == b.model
    for f in fields(CostEstimates):
        if f.name != "model":
            assert np.array_equal(getattr(a, f.name), getattr(b, f.name), equal_nan=True), f.name


def test_the_work_is_cut_in_two_halves_only_when_large_and_given_back_in_row_order() -> None:
    assert in_halves(halves.MIN_ROWS - 1, lambda rows: rows) == (slice(0, halves.MIN_ROWS - 1),)
    n = halves.MIN_ROWS + 1
    assert in_halves(n, lambda rows: rows) == (slice(0, n // 2), slice(n // 2, n))
    request = _request(n)
    second = request_rows(request, slice(n // 2, n))
    assert len(second) == n - n // 2 and second.max_downtime_ms == 500.0
    assert second.disk_used_mib is not None and request.disk_used_mib is not None
    assert np.array_equal(second.disk_used_mib, request.disk_used_mib[n // 2:])


@pytest.mark.parametrize("inner", [AnalyticMoveCosts(), LearnedMoveCosts(learned_predictor())],
                         ids=["analytic", "learned"])
def test_a_halved_request_costs_every_row_as_the_whole_request_does(inner: MoveCosts) -> None:
    request = _request(3 * halves.MIN_ROWS + 1)
    halved = HalvedMoveCosts(inner)
    assert halved.name == inner.name
    _same(halved.estimate(request), inner.estimate(request))


@pytest.mark.parametrize("strategy", sorted(BEFORE))
def test_plans_costed_in_halves_are_byte_for_byte_as_before(strategy: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(halves, "MIN_ROWS", 2)  # every batch of this small cluster in halves
    params: dict[str, object] = {"balance": {"tolerance": 0.02}, "drain": {"host": "h03"}}.get(strategy, {})
    p = plan(strategy, _cluster(), HalvedMoveCosts(COSTS), settings=SETTINGS, **params)
    assert digest(p) == BEFORE[strategy]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_process_forked_after_a_halved_batch_halves_its_own() -> None:
    """The worker thread is not in a forked child: the child starts its own rather than wait on the parent's."""
    n = halves.MIN_ROWS
    assert in_halves(n, lambda rows: rows.stop) == (n // 2, n)
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's answer is read below
        os.write(write, b"ok" if in_halves(n, lambda rows: rows.stop) == (n // 2, n) else b"no")
        os._exit(0)
    os.close(write)
    answered = select.select([read], [], [], 10.0)[0]
    if not answered:  # waiting on a thread it has not: ended rather than left behind
        os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    assert answered and os.read(read, 2) == b"ok"


@pytest.mark.timeout(30)  # without the rule it waits forever
def test_work_that_halves_again_on_the_worker_does_not_wait_for_itself() -> None:
    def outer(rows: slice) -> list[int]:  # each half halves its own rows again
        inner = in_halves(rows.stop - rows.start,
                          lambda sub: list(range(rows.start + sub.start, rows.start + sub.stop)))
        return [i for part in inner for i in part]

    n = 4 * halves.MIN_ROWS
    assert [i for part in in_halves(n, outer) for i in part] == list(range(n))
