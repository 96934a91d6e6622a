"""A replica group limited to some clusters (advisor.domain.cells, the setting `clusters`): it is pushed only its
clusters' hosts, a host of another cluster is refused with an error naming where it belongs, and it does not start
on a database holding another cluster's hosts."""

from __future__ import annotations

import pytest

from advisor.config import load_settings
from advisor.domain.cells import check_change, check_stored
from advisor.domain.cluster import InventoryChange
from advisor.domain.errors import ConfigError, FailedPrecondition
from advisor.domain.model import Host, Vm


def hosts(*clusters: str) -> InventoryChange:
    return InventoryChange(hosts=tuple(Host(f"h{i}", 16, 32768, labels={"rack": "r1", **({"cluster": c} if c else {})})
                                       for i, c in enumerate(clusters)), vms=(Vm("v1", "h0", 1024, 1),))


def test_a_group_takes_its_own_clusters_hosts_and_every_group_of_all_clusters_takes_any() -> None:
    check_change(hosts("east", "west", "east"), {"east", "west"}, "cluster")
    check_change(hosts("", "default"), {"default"}, "cluster")  # unlabelled hosts are in "default"
    check_change(hosts("east", "north"), set(), "cluster")


def test_a_host_of_another_cluster_is_refused_naming_where_it_belongs() -> None:
    with pytest.raises(FailedPrecondition) as refused:
        check_change(hosts("east", "north", ""), {"east"}, "cluster")
    message = str(refused.value)
    assert "serves clusters east only" in message and "h1 (cluster 'north')" in message
    assert "h2 (cluster 'default')" in message and "h0" not in message
    with pytest.raises(FailedPrecondition, match=r"h4 \(cluster 'n'\) and 2 more"):
        check_change(hosts(*["n"] * 7), {"east"}, "cluster")


def test_the_setting_comes_from_the_environment_and_the_flag() -> None:
    assert load_settings(env={"ADVISOR_CLUSTERS": "east, west"}).clusters == ("east", "west")
    assert load_settings(env={"ADVISOR_CLUSTERS": "east"}, overrides={"clusters": "north"}).clusters == ("north",)
    assert load_settings().clusters == ()


def test_a_group_refuses_a_database_holding_another_clusters_hosts() -> None:
    stored = hosts("east", "north", "north", "").hosts
    check_stored(stored, {"east", "north", "default"}, "cluster")  # widened: still its own
    check_stored(stored, set(), "cluster")  # a group of every cluster serves any database
    with pytest.raises(ConfigError) as refused:
        check_stored(stored, {"east"}, "cluster")
    assert "(setting clusters: east): cluster 'default': h3; cluster 'north': h1, h2" in str(refused.value)
