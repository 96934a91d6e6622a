"""Consolidation refuses a host whose emptying cannot save enough per move before trying it, and that bound never
changes what a plan moves."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.planning.engine import AntiChurn, CostEstimates, CostRequest, PlanSettings, plan
from advisor.planning.engine import consolidate as consolidate_module
from tests.unit.planning_engine.helpers import COSTS, cluster, host, vm

FREE = PlanSettings(churn=AntiChurn(max_moves=1000))


class Counting:
    """The analytic costs, remembering which VMs were costed."""

    def __init__(self) -> None:
        self.vms: set[int] = set()
        self.name = COSTS.name

    def estimate(self, request: CostRequest) -> CostEstimates:
        self.vms.update(np.asarray(request.vm).tolist())
        return COSTS.estimate(request)


def test_a_host_of_many_small_vms_is_refused_without_a_trial_or_a_costing() -> None:
    # Identical hosts: emptying one saves its idle 100 W whatever the targets, 4 W per move for 25 VMs.
    hosts = [host("a"), host("b"), host("c")]
    vms = [vm(f"a{i}", "a", memory=512, vcpus=1) for i in range(25)] + [vm("b1", "b", vcpus=8), vm("c1", "c")]
    costs = Counting()
    c = cluster(hosts, vms, cpu=0.05, pinned=["b1", "c1"])  # b and c stay: a could go there
    p = plan("consolidate", c, costs, settings=FREE, underload=0.5, min_saving_w=5.0)
    assert all(m.source_id != "a" for m in p.moves)
    refused = [r for r in p.refused if r.source_id == "a"]
    assert len(refused) == 25 and {r.kind for r in refused} == {"min gain"}
    assert "saves at most 100 W for 25 moves, below 5 W per move" in refused[0].reason
    assert not costs.vms & set(range(25)), "the VMs of a refused host are not costed"
    fewer = plan("consolidate", cluster(hosts, vms[15:], cpu=0.05, pinned=["b1", "c1"]), COSTS, settings=FREE,
                 underload=0.5, min_saving_w=5.0)
    assert [m.source_id for m in fewer.moves] == ["a"] * 10, "10 VMs save 10 W each: emptied"


@pytest.mark.parametrize("seed", range(6))
def test_the_bound_never_changes_the_moves(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hosts of different power per core, savings per move around the minimum: the plan with the bound equals the
    plan that tries every host (a bound of 0 W per core refuses only hosts whose idle power alone is too little)."""
    rng = np.random.default_rng(seed)
    hosts = [host(f"h{i}", cores=int(rng.choice([8, 16, 32])), idle_power_w=float(rng.uniform(60, 160)),
                  max_power_w=float(rng.uniform(200, 400))) for i in range(12)]
    vms = [vm(f"v{i}", f"h{int(rng.integers(12))}", memory=int(rng.choice([512, 2048, 8192])),
              vcpus=int(rng.integers(1, 5))) for i in range(90)]
    c = cluster(hosts, vms, cpu={v.id: float(rng.uniform(0.02, 0.6)) for v in vms})
    kwargs = {"settings": FREE, "underload": 0.6, "min_saving_w": float(rng.uniform(8, 25))}
    bounded = plan("consolidate", c, COSTS, **kwargs)
    monkeypatch.setattr(consolidate_module, "_least_w_per_core", lambda *_: 0.0)
    tried = plan("consolidate", c, COSTS, **kwargs)
    assert [(m.vm_id, m.target_id) for m in bounded.moves] == [(m.vm_id, m.target_id) for m in tried.moves]
