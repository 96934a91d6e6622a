"""Cells: a replica group limited to a set of clusters (the setting `clusters`) serves those alone, so that a large
fleet is split among groups, each with its own database (several on one PostgreSQL server) and its own leader.

A host's cluster is its label named by `cluster_label` (hosts without it are in "default"). A group is pushed only
its clusters' hosts: a host of another cluster is refused with an error that names where it belongs, rather than
quietly served (and executed on) by two groups. Its VMs follow: a VM on a host the group does not know is refused
as it always was. A group does not start on a database that holds another cluster's hosts.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from advisor.domain.automation import cluster_of
from advisor.domain.cluster import InventoryChange
from advisor.domain.errors import ConfigError, FailedPrecondition
from advisor.domain.model import Host

SHOWN = 5  # foreign hosts named in a refusal at most


def check_change(change: InventoryChange, clusters: Collection[str], cluster_label: str) -> None:
    """Refuse `change` if it pushes a host outside `clusters` (empty: the group serves every cluster)."""
    if not clusters:
        return
    foreign = [(h.id, cluster_of(h.labels, cluster_label)) for h in change.hosts
               if cluster_of(h.labels, cluster_label) not in clusters]
    if foreign:
        named = ", ".join(f"{host} (cluster {cluster!r})" for host, cluster in foreign[:SHOWN])
        more = f" and {len(foreign) - SHOWN} more" if len(foreign) > SHOWN else ""
        raise FailedPrecondition(
            f"this replica group serves clusters {', '.join(sorted(clusters))} only (setting clusters, by host label "
            f"{cluster_label!r}); push {named}{more} to the group that serves their cluster")


def check_stored(hosts: Iterable[Host], clusters: Collection[str], cluster_label: str) -> None:
    """Refuse to serve a database that holds hosts outside `clusters`: another group's database (groups sharing
    one would share one leader and its executor), or this group's once its clusters were narrowed."""
    if not clusters:
        return
    foreign: dict[str, list[str]] = {}
    for host in hosts:
        name = cluster_of(host.labels, cluster_label)
        if name not in clusters:
            foreign.setdefault(name, []).append(host.id)
    if foreign:
        named = "; ".join(f"cluster {name!r}: {', '.join(ids[:SHOWN])}{' ...' if len(ids) > SHOWN else ''}"
                          for name, ids in sorted(foreign.items()))
        raise ConfigError(
            f"the database holds hosts of clusters this replica group does not serve (setting clusters: "
            f"{', '.join(sorted(clusters))}): {named}. Give each group a database of its own (one server holds "
            "many), or remove those hosts before narrowing a group's clusters")
