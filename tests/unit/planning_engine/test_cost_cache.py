"""A plan's costs are cached by (VM, usable bandwidth), host links in an array and link shares in a dict, and the
analytic model costs its three cases in one call of the physics: none of it may change a plan. Plans on random
clusters are compared with plans whose costs are asked row by row and cached by the dict alone."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from advisor.planning.engine import AnalyticMoveCosts, ClusterArrays, CostEstimates, CostRequest, PlanSettings, plan
from advisor.planning.engine.costs import CostCache
from advisor.planning.engine.filters import FilterPolicy, HostView, assess


class OneByOne:
    """The analytic costs asked one row at a time: what a cost of a row is when nothing is batched."""

    def __init__(self) -> None:
        self.inner = AnalyticMoveCosts()

    @property
    def name(self) -> str:
        return self.inner.name

    def estimate(self, request: CostRequest) -> CostEstimates:
        def row(k: int) -> CostRequest:
            at = slice(k, k + 1)
            return replace(request, vm=request.vm[at], target=request.target[at], memory_mib=request.memory_mib[at],
                           dirty_rate_mib_s=request.dirty_rate_mib_s[at], bandwidth_mib_s=request.bandwidth_mib_s[at],
                           postcopy_allowed=request.postcopy_allowed[at], memory_configured_mib=None)
        return CostEstimates.concat([self.inner.estimate(row(k)) for k in range(len(request))])


def random_cluster(seed: int, n_hosts: int = 30, n_vms: int = 300) -> ClusterArrays:
    rng = np.random.default_rng(seed)
    cores = rng.choice([16.0, 32.0], n_hosts)
    heat = rng.choice([0.3, 1.0, 2.5], n_hosts, p=[0.3, 0.6, 0.1])
    where = rng.integers(0, n_hosts, n_vms)
    vcpus = rng.choice([1.0, 2.0, 4.0], n_vms)
    return ClusterArrays.build(
        host_ids=[f"h{h}" for h in range(n_hosts)], host_cores=cores, host_memory_mib=cores * 8192,
        host_bandwidth_mib_s=rng.choice([1192.0, 119.2, 500.0], n_hosts), host_idle_w=100 + 2 * cores,
        host_max_w=100 + 6 * cores, host_disabled=rng.random(n_hosts) < 0.05,
        vm_ids=[f"v{v}" for v in range(n_vms)], vm_host=where, vm_vcpus=vcpus,
        vm_memory_mib=vcpus * rng.choice([1024.0, 4096.0], n_vms),
        vm_cpu=vcpus * np.clip(rng.beta(2, 5, n_vms) * heat[where], 0, 1),
        vm_dirty_rate_mib_s=np.minimum(rng.lognormal(2.0, 1.2, n_vms), 300.0),
    )


def shown(p: object) -> str:
    return repr((p.moves, p.refused, p.summary, p.duration_s, p.waves))  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", range(3))
def test_plans_equal_plans_costed_row_by_row_and_cached_by_the_dict(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    c = random_cluster(seed)
    settings = PlanSettings(pool_size=8, pool_refresh=4)  # a pool smaller than the cluster, re-chosen often
    busiest = c.host_ids[int(np.argmax(c.loads.host_vms))]
    runs = [("balance", {}), ("consolidate", {}), ("drain", {"host": busiest, "deadline_s": 900})]
    ours = [shown(plan(name, c, AnalyticMoveCosts(), settings=settings, **kw)) for name, kw in runs]
    monkeypatch.setattr(CostCache, "MAX_LINKS", 0)
    theirs = [shown(plan(name, c, OneByOne(), settings=settings, **kw)) for name, kw in runs]
    assert ours == theirs
    assert "Balance" in ours[0]


def test_the_cache_finds_links_by_array_and_shares_by_dict() -> None:
    cache = CostCache(4, np.array([100.0, 10.0, 100.0]))
    vms, bandwidth = np.array([0, 1, 2, 2]), np.array([10.0, 100.0, 37.5, 100.0])
    assert cache.rows(vms, bandwidth).tolist() == [-1, -1, -1, -1]
    est = AnalyticMoveCosts().estimate(CostRequest(vms, np.zeros(4, dtype=np.int64), np.full(4, 2048.0),
                                                   np.full(4, 20.0), bandwidth, np.ones(4, dtype=bool)))
    cache.add(vms, bandwidth, est)
    assert cache.rows(np.array([2, 2, 0, 3]), np.array([100.0, 37.5, 10.0, 10.0])).tolist() == [3, 2, 0, -1]
    columns = cache.link_columns(np.array([10.0, 100.0]))
    assert columns is not None and cache.rows(np.array([0, 1]), np.zeros(2), columns).tolist() == [0, 1]


def test_an_assessment_through_a_pools_view_equals_one_without() -> None:
    c = random_cluster(5)
    pool = np.array([1, 4, 7, 9, 20], dtype=np.int64)
    for vm in range(0, c.n_vms, 37):
        with_view = assess(c, c.loads, vm, FilterPolicy(), hosts=pool, view=HostView.of(c, pool))
        without = assess(c, c.loads, vm, FilterPolicy(), hosts=pool)
        assert np.array_equal(with_view.rejected, without.rejected)
        assert np.array_equal(with_view.cpu_after, without.cpu_after)
        assert np.array_equal(with_view.positions, np.flatnonzero(without.eligible))
