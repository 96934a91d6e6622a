"""Automation levels per cluster (advisor.domain.automation): which level a recommendation runs at, and what the
advisor then does with it by itself.

A host's cluster is its label named by the setting `cluster_label` (hosts without it are in "default"). A
cluster's level and threshold are the settings' defaults until an admin sets them (SetAutomation); VMs override
or opt out with their `advisor.automation` label. At full automation the advisor approves its own
recommendation, recording itself as the actor with the level and the cluster, and runs its moves in order; the
limits that bind every migration (concurrency, the expiry check before each move) bind these too.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from advisor.domain import validation
from advisor.domain.automation import (
    DEFAULT_CLUSTER,
    DISABLED,
    VM_LABEL,
    ClusterAutomation,
    Level,
    automation_actor,
    cluster_of,
    executes_itself,
    least_automatic,
    vm_level,
)
from advisor.domain.errors import AdvisorError
from advisor.domain.model import Host, Vm
from advisor.domain.recommendation import Approve, Recommendation
from advisor.usecases.inventory import Inventory
from advisor.usecases.ports import AutomationStore, Clock, RecommendationStore
from advisor.usecases.records import apply_event

log = logging.getLogger("advisor.automation")


class Automation:
    """The level and threshold of each cluster, and the level a VM or a recommendation runs at."""

    def __init__(self, store: AutomationStore, inventory: Inventory, clock: Clock, *, default_level: Level,
                 default_threshold: float, cluster_label: str) -> None:
        self._store = store
        self._inventory = inventory
        self._clock = clock
        self._default = ClusterAutomation(DEFAULT_CLUSTER, default_level, default_threshold)
        self._label = cluster_label
        self._opted_out: tuple[int, frozenset[str]] = (-1, frozenset())  # at an inventory version
        self._clusters: tuple[int, frozenset[str]] = (-1, frozenset())  # likewise

    def cluster_of(self, host: Host) -> str:
        return cluster_of(host.labels, self._label)

    def settings(self) -> list[ClusterAutomation]:
        """Every cluster of the inventory and every one set, with its level and threshold."""
        stored = {s.cluster: s for s in self._store.automation()}
        clusters = self._inventory_clusters() | set(stored)
        return [stored.get(c) or replace(self._default, cluster=c) for c in sorted(clusters)]

    def _inventory_clusters(self) -> frozenset[str]:
        """The clusters of the inventory's hosts, kept until the inventory changes: a scan of every host was most of
        GetAutomation's time (0.2 ms at 1,000 hosts)."""
        version = self._inventory.version  # read first: a change during the scan makes the next call scan again
        if self._clusters[0] != version:
            self._clusters = version, frozenset(self.cluster_of(h) for h in self._inventory.hosts().values())
        return self._clusters[1]

    def of(self, cluster: str) -> ClusterAutomation:
        return self.of_each([cluster])[cluster]

    def of_each(self, clusters: Iterable[str]) -> dict[str, ClusterAutomation]:
        """The setting of each of `clusters`, read from the store once (a plan asks for every host's)."""
        stored = {s.cluster: s for s in self._store.automation()}
        return {c: stored.get(c) or replace(self._default, cluster=c) for c in clusters}

    def set(self, cluster: str, level: str, min_benefit_over_cost: float, actor: str) -> ClusterAutomation:
        checked = validation.check_automation(cluster, level, min_benefit_over_cost)
        setting = ClusterAutomation(cluster, checked, min_benefit_over_cost, actor, self._clock())
        self._store.set_automation(setting)
        log.info("automation set", extra={"cluster": cluster, "automation_level": level,
                                          "threshold": min_benefit_over_cost, "actor": actor})
        return setting

    def excluded(self, vm: Vm, host: Host) -> bool:
        """The VM opted out of automation and plans (label `advisor.automation=disabled`)."""
        return vm_level(self.of(self.cluster_of(host)).level, vm.labels) is None

    def opted_out(self) -> frozenset[str]:
        """Every VM of the inventory that opted out of automation and plans. Its label alone decides, whatever its
        cluster's level: so the clusters' settings are not read once per VM (every snapshot update asks, 11 ms at
        20,000 VMs when it called `vm_level` for each; its label's value `disabled` is what makes it None). Kept
        until the inventory changes: a snapshot updated for new samples alone asks again (1.7 ms at 20,000 VMs)."""
        version = self._inventory.version  # read first: a change during the scan makes the next call scan again
        if self._opted_out[0] == version:
            return self._opted_out[1]
        hosts = self._inventory.hosts()
        opted_out = frozenset(v.id for v in self._inventory.vms().values()
                              if v.labels.get(VM_LABEL) == DISABLED and v.host_id in hosts)
        self._opted_out = version, opted_out
        return opted_out

    def level(self, vms: Iterable[Vm], hosts: Mapping[str, Host]) -> tuple[Level, str]:
        """The level a recommendation moving these VMs runs at (the least automatic of theirs), and the cluster
        whose level that is (the first VM's)."""
        vms = list(vms)
        clusters = [self.cluster_of(host) if (host := hosts.get(vm.host_id)) is not None else DEFAULT_CLUSTER
                    for vm in vms]
        settings = self.of_each(set(clusters))
        levels = []
        for vm, cluster in zip(vms, clusters, strict=True):
            own = vm_level(settings[cluster].level, vm.labels)
            levels.append(Level.MANUAL if own is None else own)
        return least_automatic(levels), clusters[0] if clusters else DEFAULT_CLUSTER


class SelfApproval:
    """Apart from the levels, because it runs moves: the levels are read by the snapshots that the check before a
    move reads, so a levels object that ran moves would close a loop in the wiring."""

    def __init__(self, recommendations: RecommendationStore, clock: Clock,
                 run: Callable[[str, str], Recommendation]) -> None:
        """`run(rec_id, actor)` runs the moves of an approved recommendation in order (Migrations.run)."""
        self._recommendations = recommendations
        self._clock = clock
        self._run = run

    def __call__(self, rec: Recommendation) -> Recommendation:
        """What the advisor does with a new recommendation by itself: at full automation, approve it and run
        its moves; otherwise nothing (it waits for a person)."""
        level = Level(rec.automation)
        if not rec.moves or not executes_itself(level):
            return rec
        actor = automation_actor(level, rec.cluster)
        try:
            apply_event(self._recommendations, rec.id, Approve(f"automation {level} in cluster {rec.cluster}"),
                        actor, self._clock())
            return self._run(rec.id, actor)
        except AdvisorError as error:  # execution not enabled, or it expired at once: it says so
            log.warning("automation did not execute", extra={"recommendation": rec.id, "reason": str(error)})
            found = self._recommendations.get_recommendation(rec.id)
            return found if found is not None else rec
