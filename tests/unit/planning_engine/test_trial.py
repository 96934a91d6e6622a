"""A trial's moves (consolidation's) are placed without explanations and explained only once kept: the kept plan
equals, to the bit, applying each move at once, and a plan whose trials all fail costs no VM."""

from __future__ import annotations

import numpy as np

from advisor.planning.engine import AntiChurn, PlanSettings, plan
from advisor.planning.engine.planner import Planner
from advisor.planning.engine.trial import Trial
from advisor.planning.engine.weighers import Weights
from tests.unit.planning_engine.helpers import COSTS, cluster, host, vm
from tests.unit.planning_engine.test_consolidate_bound import Counting

PACK = Weights(load=-1.0, energy=1.0)
FREE = PlanSettings(churn=AntiChurn(max_moves=1000))


def _state(p: Planner) -> list[bytes]:
    loads, work = p.work.loads, p.work
    return [a.tobytes() for a in (loads.vm_host, loads.host_vcpus, loads.host_memory_mib, loads.host_cpu,
                                  loads.host_vms, loads.host_disk_in_mib, work.on, work.power_w, p.moved)]


def _planner(seed: int) -> Planner:
    rng = np.random.default_rng(seed)
    hosts = [host(f"h{i}", cores=int(rng.choice([8, 16])), memory=int(rng.choice([16384, 32768])))
             for i in range(6)]
    vms = [vm(f"v{i}", f"h{int(rng.integers(6))}", memory=int(rng.choice([1024, 4096])), vcpus=int(rng.integers(1, 4)))
           for i in range(30)]
    c = cluster(hosts, vms, cpu={v.id: float(rng.uniform(0.01, 0.7)) for v in vms})
    return Planner(c, COSTS, FREE, None, 0.0)


def _empty_host(p: Planner, host_index: int, trial: Trial | None) -> None:
    """Move every VM of a host to its best target, applied at once (`trial` None) or placed then kept."""
    closed = np.zeros(p.cluster.n_hosts, dtype=bool)
    closed[host_index] = True
    for v in p.work.vms_on(host_index).tolist():
        choice = p.choose(v, PACK, excluded=closed, pool="pack")
        assert choice is not None
        if trial is None:
            p.apply(v, choice, f"load {p.work.loads.host_cpu[host_index]!r}", 0.0, PACK)
        else:
            trial.place(v, choice)
    if trial is not None:
        trial.keep(lambda _: f"load {p.work.loads.host_cpu[host_index]!r}", PACK)


def test_a_kept_trial_equals_applying_each_move_at_once() -> None:
    for seed in range(5):
        at_once, tried = _planner(seed), _planner(seed)
        for host_index in (0, 1):  # the second host's moves start from the state the first left
            _empty_host(at_once, host_index, None)
            _empty_host(tried, host_index, Trial(tried))
        assert tried.records == at_once.records  # targets, explanations (with the load each saw), rejections
        assert _state(tried) == _state(at_once)
        assert len(at_once.records) > 0


def test_restore_puts_a_move_back_to_the_bit_where_moving_back_may_not() -> None:
    c = cluster([host("a"), host("b")], [vm("x", "a", vcpus=1), vm("y", "b", vcpus=1)], cpu={"x": 0.1, "y": 0.2})
    p = Planner(c, COSTS, FREE, None, 0.0)
    before = _state(p)
    saved = p.work.before(1, 0)
    p.work.move(1, 0)
    p.work.restore(saved)
    assert _state(p) == before and p.work.vms_on(0).tolist() == [0] and p.work.vms_on(1).tolist() == [1]
    p.work.move(1, 0)
    p.work.move(1, 1)  # 0.1 + 0.2 - 0.2 is not 0.1 in floating point
    assert p.work.loads.host_cpu[0] != c.loads.host_cpu[0]


def test_a_plan_whose_trials_all_fail_costs_no_vm() -> None:
    # Each host's big VM fits on no other host (memory): every trial fails, so nothing is costed.
    hosts = [host(h, memory=16384) for h in "abc"]
    vms = [vm(f"{h}{i}", h, memory=m) for h in "abc" for i, m in enumerate((12288, 1024))]
    costs = Counting()
    p = plan("consolidate", cluster(hosts, vms, cpu=0.05), costs, settings=FREE)
    assert not p.moves and not costs.vms
    assert "Nothing emptied: a stays, a0: no eligible host among 3: memory 2" in p.summary
    kept = plan("consolidate", cluster(hosts, [*vms[:-2], vm("c0", "c", memory=1024)], cpu=0.05), costs,
                settings=FREE)
    assert kept.moves and costs.vms, "a trial that places a whole host has its VMs costed"
