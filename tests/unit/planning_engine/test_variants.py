"""The snapshot with one change for one question: a new VM added unplaced, VMs pinned."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.domain.model import Vm
from advisor.planning.engine import FilterKind, FilterPolicy, judge, with_new_vm, with_pinned
from advisor.planning.engine.relations import group_rules
from tests.unit.planning_engine.helpers import cluster, host, vm


def test_a_new_vm_joins_the_groups_it_names_and_leaves_the_others_alone() -> None:
    c = cluster([host("a"), host("b")], [vm("x", "a", anti_affinity_groups=frozenset({"db"})),
                                         vm("y", "b", affinity_groups=frozenset({"web"}))])
    grown, new = with_new_vm(c, Vm("n", "", 2048, 2, anti_affinity_groups=frozenset({"db", "fresh"}),
                                   cpu_model="m7"))
    assert new == 2 and grown.vm_ids == ("x", "y", "n") and int(grown.vm_host[new]) == -1
    assert grown.n_vms == c.n_vms + 1 and c.n_vms == 2  # the original is untouched
    assert set(judge(grown, new, grown.host_index("a"), FilterPolicy())) == {FilterKind.ANTI, FilterKind.MODEL}
    assert FilterKind.ANTI not in judge(grown, new, grown.host_index("b"), FilterPolicy())
    db = grown.groups.names.index("db")
    assert sorted(grown.groups.members.row(db).tolist()) == [0, 2]
    assert [grown.groups.names[g] for g in grown.groups.of_vm.row(1).tolist()] == ["web"]
    assert (grown.loads.host_vcpus == c.loads.host_vcpus).all()  # unplaced: no host carries it


names = st.frozensets(st.sampled_from(("a", "b", "c", "d", "e")), max_size=3)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(names, names), max_size=12), st.tuples(names, names))
def test_a_new_vm_s_groups_are_those_of_the_snapshot_built_with_it(
        vms: list[tuple[frozenset[str], frozenset[str]]], new: tuple[frozenset[str], frozenset[str]]) -> None:
    """Adding the VM to the groups (no sort, the snapshot's rows kept) gives what building them again from every
    VM does, row for row."""
    every = [Vm(f"v{k}", "h", 1024, 1, affinity_groups=together, anti_affinity_groups=apart)
             for k, (together, apart) in enumerate([*vms, new])]
    before = group_rules(every[:-1], (), {v.id: k for k, v in enumerate(every[:-1])})
    c = cluster([host("h")], [vm(v.id, "h", affinity_groups=v.affinity_groups,
                                 anti_affinity_groups=v.anti_affinity_groups) for v in every[:-1]])
    assert c.groups.names == before.names
    grown = with_new_vm(c, every[-1])[0].groups
    rebuilt = group_rules(every, (), {v.id: k for k, v in enumerate(every)})
    assert grown.names == rebuilt.names
    assert grown.together.tolist() == rebuilt.together.tolist() and grown.must.tolist() == rebuilt.must.tolist()
    for mine, theirs in ((grown.members, rebuilt.members), (grown.of_vm, rebuilt.of_vm)):
        assert mine.ptr.tolist() == theirs.ptr.tolist() and mine.values.tolist() == theirs.values.tolist()


def test_a_new_vm_is_placed_only_where_its_networks_are_offered() -> None:
    c = cluster([host("a", networks=frozenset({"br0"})), host("b", networks=frozenset({"br0", "vlan-7"}))],
                [vm("x", "a", networks=frozenset({"br0"})), vm("y", "b")])
    grown, new = with_new_vm(c, Vm("n", "", 2048, 2, networks=frozenset({"vlan-7", "nowhere"})))
    assert grown.networks.names == ("br0", "vlan-7", "nowhere") and c.networks.names == ("br0", "vlan-7")
    assert [grown.networks.names[k] for k in grown.networks.of_vm.row(0).tolist()] == ["br0"]
    why = judge(grown, new, grown.host_index("b"), FilterPolicy())
    assert why == {FilterKind.NETWORK: "lacks network 'nowhere' that n uses"}
    simple, plain = with_new_vm(c, Vm("p", "", 2048, 2, networks=frozenset({"vlan-7"})))
    assert FilterKind.NETWORK in judge(simple, plain, 0, FilterPolicy())
    assert not judge(simple, plain, 1, FilterPolicy())


def test_pinned_vms_are_no_longer_movable() -> None:
    c = cluster([host("a")], [vm("x", "a"), vm("y", "a")])
    pinned = with_pinned(c, [1])
    assert pinned.vm_movable.tolist() == [True, False] and c.vm_movable.tolist() == [True, True]
