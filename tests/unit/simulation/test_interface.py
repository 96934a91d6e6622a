"""A policy written outside the package plugs in through the Protocol and the registry alone."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from advisor.simulation.detectors import StaticThreshold
from advisor.simulation.engine import SimulationConfig, simulate
from advisor.simulation.interface import Migration, Snapshot
from advisor.simulation.placement import PowerAwareBestFit, place_all
from advisor.simulation.policies import PolicyInfo, make_policy, policy_names, register_policy
from advisor.simulation.working import WorkingCluster

from .helpers import SMALL, datacenter, trace


class MoveBusiestToEmptiest:
    """Not derived from anything: at each step, move the busiest VM of the busiest host to the emptiest host."""

    name = "busiest-to-emptiest"

    def __init__(self) -> None:
        self.seen: list[Snapshot] = []

    def initial_placement(self, snapshot: Snapshot) -> np.ndarray:
        # reuse CloudSim's PABFD at t = 0 (what CloudSim does), then decide differently
        return place_all(WorkingCluster(snapshot), PowerAwareBestFit(), StaticThreshold(0.8))

    def decide(self, snapshot: Snapshot) -> Sequence[Migration]:
        self.seen.append(snapshot)
        with pytest.raises(ValueError):
            snapshot.vm_host[0] = 5  # read-only
        busiest = int(np.argmax(snapshot.host_utilization))
        vms = [v for v in snapshot.host_vms(busiest).tolist() if not snapshot.vm_migrating[v]]
        if not vms:
            return []
        vm = max(vms, key=lambda v: snapshot.vm_requested_mips[v])
        emptiest = int(np.argmin(np.where(np.arange(snapshot.n_hosts) == busiest, np.inf, snapshot.host_utilization)))
        return [Migration(vm, emptiest)]


def test_an_outside_policy_runs_and_sees_the_state():
    if "busiest-to-emptiest" not in policy_names():
        register_policy(PolicyInfo("busiest-to-emptiest", "test policy", {}, MoveBusiestToEmptiest))
    policy = make_policy("busiest-to-emptiest")
    tr = trace([[90] * 6, [10] * 6, [50] * 6], [1000, 1000, 1000], [500, 500, 500])
    r = simulate(tr, datacenter([SMALL, SMALL, SMALL]), policy, SimulationConfig())
    assert isinstance(policy, MoveBusiestToEmptiest)
    assert r.migrations == len(policy.seen) == 5
    first = policy.seen[0]
    assert first.step == 1 and first.history_len == 1 and first.n_vms == 3 and first.n_hosts == 3
    assert first.vm_ram_mb.tolist() == [500, 500, 500]
    assert first.datacenter.power_tables.shape == (3, 11)
    assert policy.seen[-1].history_len == 5
    with pytest.raises(ValueError, match="already registered"):
        register_policy(PolicyInfo("busiest-to-emptiest", "again", {}, MoveBusiestToEmptiest))
