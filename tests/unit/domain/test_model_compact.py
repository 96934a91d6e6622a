"""The inventory's VMs are compact (issue 17: at most 2 KiB per VM in all): no instance dictionary, a host's VMs
share its id's string, and VMs without names of a kind share one empty set, with values as given."""

from __future__ import annotations

import copy
import pickle
from dataclasses import replace

from advisor.domain.model import Vm, VmSample


def test_a_vm_keeps_no_dictionary_and_shares_its_host_s_id_and_empty_sets() -> None:
    host = "".join(["host-", "00042"])  # built at run time, as a decoded message's string is
    a = Vm("a", host, 1024, 1, networks=frozenset())
    b = Vm("b", "".join(["host-", "00042"]), 2048, 2, anti_affinity_groups=frozenset({"app"}))
    assert not hasattr(a, "__dict__") and not hasattr(VmSample("a", 1.0), "__dict__")
    assert a.host_id is b.host_id and a.host_id == host
    assert a.networks is b.networks is a.affinity_groups is b.affinity_groups is a.anti_affinity_groups
    assert b.anti_affinity_groups == frozenset({"app"}) and a.networks == frozenset()


def test_a_compact_vm_is_compared_copied_replaced_and_pickled_as_before() -> None:
    vm = Vm("a", "h1", 1024, 2, labels={"k": "v"}, affinity_groups=frozenset({"g"}))
    for other in (pickle.loads(pickle.dumps(vm)), copy.deepcopy(vm), replace(vm)):
        assert other == vm and other.labels == {"k": "v"} and other.affinity_groups == frozenset({"g"})
    moved = replace(vm, host_id="".join(["h", "2"]))
    assert moved.host_id == "h2" and moved.host_id is Vm("b", "h2", 1, 1).host_id and moved != vm
