"""Plans on a varied cluster of a few hundred VMs, byte for byte as the code before the planner's speed-ups of
2026-12-07 made them (the even phase's loads kept up to date per move, each VM's seconds kept once read): every
strategy, with a pool smaller than the cluster, idle hosts to wake and a host in maintenance."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.planning.engine import AntiChurn, ClusterArrays, PlanSettings, plan
from tests.unit.planning_engine.helpers import COSTS, cluster, host, vm
from tests.unit.planning_engine.test_cold_rule import digest

SETTINGS = PlanSettings(churn=AntiChurn(max_moves=150), pool_size=12, pool_refresh=5)


def _cluster() -> ClusterArrays:
    rng = np.random.default_rng(7)
    hosts = [host(f"h{i:02d}", cores=(16, 32, 64)[i % 3], in_maintenance=i == 5,
                  network_bandwidth_mib_s=(250.0, 1000.0)[i % 2]) for i in range(40)]
    # hosts 30-39 start empty: a move there wakes one
    vms = [vm(f"v{k:03d}", f"h{int(rng.integers(0, 30)):02d}", memory=1024 * int(rng.integers(1, 9)),
              vcpus=int(rng.integers(1, 5))) for k in range(400)]
    cpu = {v.id: float(rng.uniform(0.05, 1.0)) for v in vms}
    return cluster(hosts, vms, cpu=cpu, dirty=20.0)


# By the code before (git c7876da).
BEFORE = {
    "balance": "5497c262510de2778deafe19cd72f81dc9026471110dfe91801392602045903f",
    "consolidate": "caf26c62408d2d84030657be8ba4a83634d902fc1d1b711b0615116150666a2f",
    "drain": "da6313ae20a882af53d5564ea348169a11bfcdfb5bb827a667a629e2cbf3a45d",
}


@pytest.mark.parametrize("strategy", sorted(BEFORE))
def test_plans_are_byte_for_byte_as_before(strategy: str) -> None:
    params: dict[str, object] = {"balance": {"tolerance": 0.02}, "drain": {"host": "h03"}}.get(strategy, {})
    p = plan(strategy, _cluster(), COSTS, settings=SETTINGS, **params)
    assert p.moves
    assert digest(p) == BEFORE[strategy]
