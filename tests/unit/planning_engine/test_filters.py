"""Hard filters as a table: one VM, one candidate host, the filters that reject it and the reason's words."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.domain.model import Disk, Host, Vm
from advisor.planning.engine import (
    FILTERS,
    FilterKind,
    FilterPolicy,
    VmGroupRule,
    VmHostRule,
    all_assessments,
    rank_targets,
)
from advisor.planning.engine.filters import assess, reason, rejections
from advisor.planning.engine.snapshot import ClusterArrays
from tests.unit.planning_engine.helpers import cluster, host, vm

NETS = frozenset({"br-prod", "sriov-a"})
LOCAL = (Disk("vda", 20480.0, 6000.0, shared=False), Disk("vdb", 4096.0, 100.0, shared=False),
         Disk("vdc", 102400.0, 50000.0, shared=True))
POLICY = FilterPolicy(cpu_allocation_ratio=2.0, memory_allocation_ratio=1.0, max_cpu_after=0.8)


def two_hosts(target: Host, *others: Vm, moving: Vm | None = None, rules: tuple = (),
              cpu: float = 0.25) -> ClusterArrays:
    """The moving VM (index 0) on host "src", the candidate host "t", other VMs wherever they say."""
    mover = moving or vm("m", "src")
    return cluster([host("src"), target], [mover, *others], cpu=cpu, rules=rules)


CASES = [
    # (case, cluster, expected filters rejecting host "t", words of the first reason)
    ("fits", two_hosts(host("t")), set(), ""),
    ("maintenance", two_hosts(host("t", in_maintenance=True)), {"disabled"}, "maintenance"),
    ("cpu model", two_hosts(host("t", cpu_model="old"), moving=vm("m", "src", cpu_model="new")),
     {"CPU model"}, "'old' differs from m's 'new'"),
    ("any model", two_hosts(host("t", cpu_model="old")), set(), ""),
    ("vcpus", two_hosts(host("t", cores=4), vm("x", "t", vcpus=7)), {"vCPUs"}, "7 + 2 > 8 allowed"),
    ("memory", two_hosts(host("t", memory=8192), vm("x", "t", memory=6144)), {"memory"}, "2048 of 8192 MiB free"),
    ("headroom", two_hosts(host("t", cores=4), vm("x", "t", vcpus=2), cpu=1.0), {"CPU headroom"}, "100% > 80%"),
    ("anti-affinity", two_hosts(host("t"), vm("x", "t", anti_affinity_groups=frozenset({"db"})),
                                moving=vm("m", "src", anti_affinity_groups=frozenset({"db"}))),
     {"anti-affinity"}, "group 'db': VM x runs there"),
    ("affinity must", two_hosts(host("t"), vm("x", "src"),
                                rules=(VmGroupRule("pair", frozenset({"m", "x"}), together=True, must=True),)),
     {"affinity"}, "must stay together"),
    ("affinity should", two_hosts(host("t"), vm("x", "src"),
                                  rules=(VmGroupRule("pair", frozenset({"m", "x"}), together=True, must=False),)),
     set(), ""),
    ("host affinity", two_hosts(host("t"), rules=(VmHostRule("on-src", frozenset({"m"}), frozenset({"src"}),
                                                             on=True, must=True),)), {"host affinity"}, "run on"),
    ("host anti-affinity", two_hosts(host("t"), rules=(VmHostRule("off-t", frozenset({"m"}), frozenset({"t"}),
                                                                  on=False, must=True),)),
     {"host anti-affinity"}, "stay off"),
    ("host rule soft", two_hosts(host("t"), rules=(VmHostRule("off-t", frozenset({"m"}), frozenset({"t"}),
                                                              on=False, must=False),)), set(), ""),
    ("other cluster", cluster([host("src", labels={"cluster": "east"}), host("t", labels={"cluster": "west"})],
                              [vm("m", "src")], cluster_label="cluster"),
     {"other cluster"}, "in cluster 'west'; m runs in 'east' and moves only within it"),
    ("same cluster", cluster([host("src", labels={"cluster": "east"}), host("t", labels={"cluster": "east"})],
                             [vm("m", "src")], cluster_label="cluster"), set(), ""),
    ("clusters not asked for", cluster([host("src", labels={"cluster": "east"}),
                                        host("t", labels={"cluster": "west"})], [vm("m", "src")]), set(), ""),
    ("networks offered", two_hosts(host("t", networks=NETS), moving=vm("m", "src", networks=NETS)), set(), ""),
    ("more networks offered", two_hosts(host("t", networks=NETS | {"vlan-7"}), moving=vm("m", "src", networks=NETS)),
     set(), ""),
    ("network missing", two_hosts(host("t", networks=frozenset({"br-prod"})), moving=vm("m", "src", networks=NETS)),
     {"network"}, "lacks network 'sriov-a' that m uses"),
    ("networks missing", two_hosts(host("t"), moving=vm("m", "src", networks=NETS)),
     {"network"}, "lacks networks 'br-prod', 'sriov-a' that m uses"),
    ("no network used", two_hosts(host("t"), vm("x", "t", networks=NETS)), set(), ""),
    # local disks need their sizes (20480 + 4096 MiB; the shared one stays) free on the target
    ("local disks fit", two_hosts(host("t", local_disk_free_mib=24576.0), moving=vm("m", "src", disks=LOCAL)),
     set(), ""),
    ("local disks too large", two_hosts(host("t", local_disk_free_mib=24575.0), moving=vm("m", "src", disks=LOCAL)),
     {"local disk space"}, "m's local disks need 24576 MiB, 24575 MiB free"),
    ("free space unknown", two_hosts(host("t"), moving=vm("m", "src", disks=LOCAL)), set(), ""),
    ("shared disks only", two_hosts(host("t", local_disk_free_mib=0.0), moving=vm("m", "src", disks=LOCAL[2:])),
     set(), ""),
]


@pytest.mark.parametrize(("case", "c", "expected", "words"), CASES, ids=[c[0] for c in CASES])
def test_each_filter_rejects_the_host_it_should_with_its_reason(case: str, c: ClusterArrays, expected: set[str],
                                                                words: str) -> None:
    a = assess(c, c.loads, 0, POLICY)
    t = c.host_index("t")
    got = {FILTERS[k] for k in np.flatnonzero(a.rejected[:, t])}
    assert got == expected, case
    assert a.eligible[t] == (not expected)
    if expected:
        assert words in reason(c, c.loads, 0, POLICY, FilterKind(next(iter(expected))), t)
    # the VM's own host is always rejected as such
    assert a.rejected[FilterKind.CURRENT.row, c.host_index("src")]


def test_the_network_filter_rejects_every_host_lacking_one_of_the_vm_networks_at_once() -> None:
    hosts = [host("src", networks=NETS), host("both", networks=NETS), host("one", networks=frozenset({"br-prod"})),
             host("none"), host("other", networks=frozenset({"sriov-a", "vlan-9"}))]
    c = cluster(hosts, [vm("m", "src", networks=NETS), vm("free", "src")])
    a = assess(c, c.loads, 0, POLICY)
    assert a.rejected[FilterKind.NETWORK.row].tolist() == [False, False, True, True, True]
    assert a.eligible_hosts().tolist() == [1]
    assert not assess(c, c.loads, 1, POLICY).rejected[FilterKind.NETWORK.row].any()  # uses none: goes anywhere
    ranking = rank_targets(c, 0, policy=POLICY)
    assert ranking.target_id == "both"
    network = next(r for r in ranking.rejections if r.kind == FilterKind.NETWORK)
    assert (network.hosts, network.example_host) == (3, "one")
    assert network.reason == "lacks network 'sriov-a' that m uses"


def test_local_disks_moved_onto_a_host_use_its_free_space_for_the_next_move() -> None:
    disks = (Disk("vda", 6000.0, 1000.0, shared=False),)
    c = cluster([host("src"), host("t", local_disk_free_mib=10000.0)],
                [vm("a", "src", disks=disks), vm("b", "src", disks=disks)])
    assert assess(c, c.loads, 1, POLICY).eligible[1]
    after = c.with_moves([0], [1])
    a = assess(after, after.loads, 1, POLICY)
    assert a.rejected[FilterKind.DISK.row].tolist() == [False, True]
    assert reason(after, after.loads, 1, POLICY, FilterKind.DISK, 1) == (
        "local disk space: b's local disks need 6000 MiB, 4000 MiB free")
    assert after.loads.host_disk_in_mib.tolist() == [0.0, 6000.0]  # the source keeps its image: nothing back


def test_excluded_hosts_recently_left_hosts_and_a_subset_of_hosts() -> None:
    c = cluster([host("src"), host("a"), host("b"), host("c")], [vm("m", "src")])
    excluded = np.array([False, True, False, False])
    a = assess(c, c.loads, 0, POLICY, excluded=excluded, left=2)
    assert a.eligible.tolist() == [False, False, False, True]
    assert a.counts()[FilterKind.EXCLUDED.row] == 1 and a.counts()[FilterKind.LEFT.row] == 1
    assert "cooldown" in reason(c, c.loads, 0, POLICY, FilterKind.LEFT, 2)
    subset = assess(c, c.loads, 0, POLICY, hosts=np.array([2, 3]), left=2)
    assert subset.hosts.tolist() == [2, 3] and subset.eligible.tolist() == [False, True] and not subset.all_hosts


def test_rejections_are_counted_by_filter_with_one_example_each() -> None:
    hosts = [host("src")] + [host(f"m{i}", in_maintenance=True) for i in range(3)] + [host("small", memory=2048)]
    c = cluster(hosts, [vm("m", "src")])
    summary = rejections(c, c.loads, assess(c, c.loads, 0, POLICY), POLICY)
    assert summary[0][:3] == ("disabled", 3, "m0")
    assert {f for f, *_ in summary} == {"disabled", "memory", "current host"}
    assert all(isinstance(text, str) and text for *_, text in summary)


def test_rank_targets_ranks_every_host_for_one_vm_with_the_rejections_counted() -> None:
    hosts = [host("src"), host("full", cores=2), host("free"), host("busy"), host("off", in_maintenance=True)]
    c = cluster(hosts, [vm("m", "src"), vm("b", "busy", vcpus=8), vm("f", "full", vcpus=3)], cpu=0.5)
    r = rank_targets(c, 0, policy=POLICY, keep=2)
    assert r.target_id == "free" and [a.host_id for a in r.best] == ["free", "busy"]
    assert {f for f, *_ in r.rejections} == {"current host", "vCPUs", "disabled"}  # "full" fails headroom too
    assert sum(n for _, n, *_ in r.rejections) == r.assessed - r.eligible
    assert r.best[0].cpu_after == pytest.approx(1 / 16) and "CPU 6%" in r.best[0].detail


def test_each_rejected_host_is_counted_once_and_the_vms_own_host_only_as_its_current_host() -> None:
    # "off" is in maintenance and too small; "src" holds the VM, whose load would count twice there
    hosts = [host("src", cores=2), host("off", in_maintenance=True, memory=1024), host("free")]
    c = cluster(hosts, [vm("m", "src")], cpu=1.5)
    a = assess(c, c.loads, 0, POLICY)
    assert a.rejected[:, 0].tolist() == [kind is FilterKind.CURRENT for kind in FILTERS]
    assert a.rejected[FilterKind.DISABLED.row, 1] and a.rejected[FilterKind.MEMORY.row, 1]
    summary = rejections(c, c.loads, a, POLICY)
    assert [(f, n, h) for f, n, h, _ in summary] == [("current host", 1, "src"), ("disabled", 1, "off")]
    assert int(a.counts().sum()) == int((~a.eligible).sum()) == 2


def test_rank_targets_excludes_the_hosts_named_and_ignores_unknown_names() -> None:
    c = cluster([host("src"), host("a"), host("b"), host("c")], [vm("m", "src")])
    r = rank_targets(c, 0, policy=POLICY, excluded=["b", "nowhere", "a"])
    assert r.target_id == "c" and r.eligible == 1
    assert r.assessment.rejected[FilterKind.EXCLUDED.row].tolist() == [False, True, True, False]


def test_all_assessments_give_each_host_its_rejecting_filters_as_bits_and_each_eligible_one_its_score() -> None:
    # "off" is rejected by two filters, "src" only as the current host; "a" and "b" are scored
    hosts = [host("src"), host("off", in_maintenance=True, memory=1024), host("a"), host("b", cores=32, memory=131072)]
    c = cluster(hosts, [vm("m", "src")], cpu=0.5)
    r = rank_targets(c, 0, policy=POLICY)
    found = all_assessments(c, r)
    assert found.host_ids == ("src", "off", "a", "b")
    assert found.rejected == (1 << FilterKind.CURRENT.row, 1 << FilterKind.DISABLED.row | 1 << FilterKind.MEMORY.row,
                              0, 0)
    by_host = {h: s for h, s in zip(found.host_ids, found.score, strict=True)}
    assert by_host["src"] is None and by_host["off"] is None
    assert by_host["b"] == r.best[0].score < by_host["a"] == r.best[1].score
