"""The arrays built from domain values, and copy-on-write moves."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.domain.model import Host, Vm
from advisor.planning.engine import VmGroupRule, VmHostRule, from_domain
from advisor.planning.engine.snapshot import ANY_MODEL, NO_HOST
from tests.unit.planning_engine.helpers import cluster, host, vm


def test_from_domain_maps_capacity_load_models_and_rules() -> None:
    hosts = [host("a", cpu_model="icelake"), host("b", cores=8, in_maintenance=True), host("c")]
    vms = [vm("v1", "a", vcpus=4, cpu_model="icelake"), vm("v2", "a"), vm("v3", "gone"),
           vm("v4", "c", anti_affinity_groups=frozenset({"db"}), affinity_groups=frozenset({"web"}))]
    rules = [VmHostRule("keep-off-b", frozenset({"v2"}), frozenset({"b"}), on=False, must=True),
             VmGroupRule("pair", frozenset({"v1", "v2"}), together=True, must=True)]
    # a is measured at 50% of 16 cores = 8 busy; its VMs explain 4 x 0.5 + 2 x 1.0 (v2 unknown: fully busy) = 4
    c = from_domain(hosts, vms, {"a": 0.5}, {"v1": 0.5}, rules)
    assert c.host_ids == ("a", "b", "c") and c.vm_ids == ("v1", "v2", "v3", "v4")
    assert c.vm_host.tolist() == [0, 0, NO_HOST, 2]
    assert c.host_disabled.tolist() == [False, True, False]
    assert c.vm_cpu.tolist() == [2.0, 2.0, 2.0, 2.0]
    assert c.host_base_cpu.tolist() == [4.0, 0.0, 0.0]
    assert c.loads.host_cpu.tolist() == [8.0, 0.0, 2.0]
    assert c.loads.host_vms.tolist() == [2, 0, 1]
    assert c.cpu_models == ("icelake",) and c.vm_cpu_model.tolist() == [0, ANY_MODEL, ANY_MODEL, ANY_MODEL]
    assert np.isnan(c.vm_dirty_rate_mib_s).all()  # unknown: costed pessimistically
    names = c.groups.names
    assert set(names) == {"db", "web", "pair"}
    g = names.index("pair")
    assert c.groups.together[g] and c.groups.must[g] and c.groups.members.row(g).tolist() == [0, 1]
    db = names.index("db")
    assert not c.groups.together[db] and c.groups.must[db]  # the domain's anti-affinity is hard
    web = names.index("web")
    assert c.groups.together[web] and not c.groups.must[web]  # and its affinity soft
    assert c.host_rules.names == ("keep-off-b",) and c.host_rules.hosts.row(0).tolist() == [1]
    assert c.host_rules.of_vm.row(1).tolist() == [0] and not c.host_rules.of_vm.has_row(0)


def test_with_moves_copies_the_loads_only_and_leaves_the_original_alone() -> None:
    c = cluster([host("a"), host("b")], [vm("v1", "a"), vm("v2", "a", memory=8192)], cpu=0.5)
    after = c.with_moves([1], [1])
    assert c.vm_host.tolist() == [0, 0] and after.vm_host.tolist() == [0, 1]
    assert after.loads.host_memory_mib.tolist() == [4096.0, 8192.0]
    assert after.loads.host_cpu.tolist() == [1.0, 1.0] and after.loads.host_vms.tolist() == [1, 1]
    assert after.host_cores is c.host_cores and after.groups is c.groups  # static arrays shared
    with pytest.raises(ValueError):
        after.loads.vm_host[0] = 1  # a snapshot's loads are read-only
    assert after.vm_index("v2") == 1 and after.host_index("b") == 1


def test_build_refuses_a_host_without_cores_and_a_vm_on_no_known_host() -> None:
    with pytest.raises(ValueError, match="cores"):
        from_domain([Host("a", 0, 1024)], [], {}, {})
    c = from_domain([host("a")], [Vm("v", "elsewhere", 1024, 1)], {}, {})
    assert c.vm_host.tolist() == [NO_HOST] and c.loads.host_vms.tolist() == [0]
