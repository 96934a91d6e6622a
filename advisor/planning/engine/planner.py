"""What every strategy shares: the working copy of the cluster, target search, cost lookups, and the finished plan.

A strategy simulates as it goes: each chosen move is applied to the plan's own copy of the loads before the next
is chosen (`Planner.apply`), and can be taken back (`undo`) when a trial such as emptying a host fails.

Target search assesses every host while the cluster has at most `pool_size` hosts. Beyond that, a move assesses a
pool: the `pool_size` hosts the strategy would prefer anyway (least loaded to spread, fullest with room to pack),
re-chosen every `pool_refresh` moves; only when no pool host is eligible are all hosts assessed. So a move costs
O(pool) instead of O(hosts), and a plan's cost grows with its moves, not with moves x hosts. Explanations say how
many hosts were assessed and how they were chosen.

A move is costed as serving costs it: between two hosts that encrypt it (the setting migration_tls not off, and
both offering TLS) at their link less TLS's overhead (advisor.physics.transport), with its VM's local disks
copied, and cold where advice would move it cold (asked for, or alone in meeting the limits) or refused where its
VM asks for cold the rules forbid (advisor.planning.engine.carried).

Costs are asked of the `MoveCosts` in batches and cached per (VM, usable bandwidth) for the plan's life, so a VM
costed while ranking candidates is not costed again when it moves. A plan given a `pricing` MoveCosts ranks its
candidates (10^4-10^5 rows) with `costs` and prices only the moves it chose with `pricing`, alone on their links
and at the share of the links each schedule starts them with (case_prices.py): those prices order and schedule the
moves and are the ones the plan shows (the use cases price them as advice does, advisor.usecases.plan_costs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from advisor.domain.text import counted
from advisor.domain.transport import TlsMode
from advisor.physics.transport import TLS_THROUGHPUT_FACTOR
from advisor.planning.engine.case_prices import CasePrices
from advisor.planning.engine.churn import AntiChurn, MoveHistory
from advisor.planning.engine.costs import CostCache, CostEstimates, CostRequest, MoveCosts
from advisor.planning.engine.filters import Assessment, FilterPolicy, HostView, Rejection, assess, rejections
from advisor.planning.engine.forecast import Forecast
from advisor.planning.engine.results import Alternative, Explanation, Plan, PlannedMove, PowerAdvice, Refusal
from advisor.planning.engine.schedule import Concurrency, Schedule
from advisor.planning.engine.snapshot import NO_HOST, BoolArray, ClusterArrays, FloatArray, IntArray
from advisor.planning.engine.weighers import Scores, Weights, describe, weigh
from advisor.planning.engine.working import Working


@dataclass(frozen=True)
class PlanSettings:
    """Knobs of plans (the settings `placement_*`, `plan_*` and the migration limits), shared by every strategy;
    `rebalance_tolerance`, `rebalance_hot` and `rebalance_horizon_s` are balance's defaults, and serving reads a
    rebalance's snapshot with `rebalance_forecast`."""

    filters: FilterPolicy = field(default_factory=FilterPolicy)
    churn: AntiChurn = field(default_factory=AntiChurn)
    concurrency: Concurrency = field(default_factory=Concurrency)
    max_downtime_ms: float = 300.0  # a move predicted (p90) to exceed it is refused
    deadline_ms: float = 0.0  # per move; 0: none
    pool_size: int = 1024
    pool_refresh: int = 64
    alternatives: int = 3  # eligible hosts kept per explanation besides the chosen one
    rebalance_tolerance: float = 0.10  # balance evens the load until the busiest host is within this of the mean
    rebalance_hot: float = 0.0  # balance relieves hosts above this CPU load (0: the filters' max_cpu_after)
    rebalance_horizon_s: float = 0.0  # > 0: balance ranks relief by the SLA time it saves over this (overload.py)
    rebalance_forecast: Forecast | None = None  # a rebalance plans each VM at this forecast (None: latest sample)
    postcopy_forbidden_clusters: frozenset[str] = frozenset()  # as TechniqueRules' (a VM's label: the snapshot)


@dataclass
class MoveRecord:
    """A move of the plan so far (explained by `apply`; a trial's is not, trial.py)."""

    vm: int
    source: int
    target: int
    benefit: float
    why_vm: str
    why_host: str
    assessed: int
    eligible: int
    rejections: tuple[Rejection, ...]
    alternatives: tuple[Alternative, ...]


@dataclass(frozen=True)
class Choice:
    assessment: Assessment
    scores: Scores
    position: int

    @property
    def host(self) -> int:
        return int(self.scores.hosts[self.position])


class Planner:
    def __init__(self, cluster: ClusterArrays, costs: MoveCosts, settings: PlanSettings,
                 history: MoveHistory | None, now_s: float, max_moves: int = 0,
                 pricing: MoveCosts | None = None) -> None:
        self.cluster, self.costs, self.settings, self.pricing = cluster, costs, settings, pricing
        self.work = Working(cluster)
        self.cooling, self.left = (history or MoveHistory()).arrays(cluster, now_s, settings.churn)
        self.moved = np.zeros(cluster.n_vms, dtype=bool)
        self.cap = max_moves if max_moves > 0 else settings.churn.cap(cluster.n_vms)
        self.records: list[MoveRecord] = []
        self.refused: dict[int, Refusal] = {}
        self.reference_w = float(cluster.host_max_w.mean()) if cluster.n_hosts else 0.0
        links = cluster.host_bandwidth_mib_s
        # hosts whose moves between them are encrypted (None: none is)
        tls = cluster.host_migration_tls if settings.filters.migration_tls is not TlsMode.OFF else None
        self._tls = tls if tls is not None and np.count_nonzero(tls) > 1 else None
        self._links = np.unique(links)
        self._costs = CostCache(cluster.n_vms, links if self._tls is None else np.concatenate(
            [links, links[self._tls] * TLS_THROUGHPUT_FACTOR]))
        # a pair's link column is the lower of theirs, unless TLS takes its share
        self._link_column = self._costs.link_columns(links) if self._tls is None else None
        self._seconds = np.zeros(cluster.n_vms)  # `seconds` of each VM, where known
        self._seconds_known = np.zeros(cluster.n_vms, dtype=bool)
        self._carried = bool(cluster.vm_local_disk_used_mib.any() or cluster.vm_cold.any())
        self._pools: dict[str, tuple[IntArray, int]] = {}
        self._views: dict[str, HostView] = {}
        allowed = np.array([name not in settings.postcopy_forbidden_clusters for name in cluster.clusters])
        self._postcopy_cluster = np.append(allowed[cluster.host_cluster], True)  # by host; [-1]: no host
        self.last_failure = ""

    # --- costs -------------------------------------------------------------------------------------------------

    def bandwidth(self, vms: IntArray, targets: IntArray) -> FloatArray:
        bw = self.cluster.host_bandwidth_mib_s
        sources = self.cluster.loads.vm_host[vms]  # the VM's host before the plan: where it migrates from
        usable: FloatArray = np.minimum(bw[np.where(sources >= 0, sources, targets)], bw[targets])
        return self.encrypted(vms, targets, usable)

    def encrypted(self, vms: IntArray, targets: IntArray, bandwidth: FloatArray) -> FloatArray:
        """`bandwidth` of these moves less TLS's overhead where the pair encrypts (as the features layer's)."""
        if self._tls is None:
            return bandwidth
        sources = self.cluster.loads.vm_host[vms]
        tls = (sources >= 0) & self._tls[np.maximum(sources, 0)] & self._tls[targets]
        left: FloatArray = np.where(tls, bandwidth * TLS_THROUGHPUT_FACTOR, bandwidth)
        return left

    def estimate(self, vms: IntArray | Sequence[int], targets: IntArray | Sequence[int],
                 bandwidth: FloatArray | None = None) -> CostEstimates:
        """Costs of moving each VM to its target (cached per VM and usable bandwidth), over the whole link unless
        `bandwidth` (its share) is given."""
        return self._costs.store.take(self._rows(vms, targets, bandwidth))

    def _rows(self, vms: IntArray | Sequence[int], targets: IntArray | Sequence[int],
              bandwidth: FloatArray | None = None) -> IntArray:
        """The cache's rows of these moves, costing the missing ones first."""
        vms, targets = np.asarray(vms, dtype=np.int64), np.asarray(targets, dtype=np.int64)
        bw = self.bandwidth(vms, targets) if bandwidth is None else np.asarray(bandwidth, dtype=np.float64)
        column = None
        if bandwidth is None and self._link_column is not None:
            sources = self.cluster.loads.vm_host[vms]
            column = np.minimum(self._link_column[np.where(sources >= 0, sources, targets)],
                                self._link_column[targets])
        rows = self._costs.rows(vms, bw, column)
        missing = rows < 0
        if missing.any():
            self._fetch(vms[missing], targets[missing], bw[missing])
            rows = self._costs.rows(vms, bw, column)
            if (rows < 0).any():
                raise ValueError("a usable bandwidth is not a number: every host needs its link's bandwidth")
        return rows

    def _fetch(self, vms: IntArray, targets: IntArray, bw: FloatArray) -> None:
        """Cost the missing rows in one request, and with them every other usable bandwidth these VMs can have
        (min of their source's and each distinct host link), so that a later target is a cache hit."""
        links = self._links
        if 1 < links.shape[0] <= 8:
            sources = self.cluster.loads.vm_host[vms]
            own = self.cluster.host_bandwidth_mib_s[np.where(sources >= 0, sources, targets)]
            every = np.minimum(own[:, None], links[None, :])
            vms = np.concatenate([vms, np.repeat(vms, links.shape[0])])
            targets = np.concatenate([targets, np.repeat(targets, links.shape[0])])
            bw = np.concatenate([bw, every.ravel()])
        # each (VM, bandwidth) not costed yet once, at its first appearance
        new = np.flatnonzero(self._costs.rows(vms, bw) < 0)
        pairs = np.stack([vms[new], bw[new].view(np.int64)], axis=1)
        pick = new[np.sort(np.unique(pairs, axis=0, return_index=True)[1])]
        self._costs.add(vms[pick], bw[pick], self.costs.estimate(self._request(vms[pick], targets[pick], bw[pick])))

    def _request(self, v: IntArray, targets: IntArray, bw: FloatArray) -> CostRequest:
        c = self.cluster
        dirty = c.vm_dirty_rate_mib_s[v]
        sources = c.loads.vm_host[v]
        load = c.host_load_per_cpu[targets]
        request = CostRequest(
            vm=v, target=targets, memory_mib=c.vm_memory_used_mib[v], memory_configured_mib=c.vm_memory_mib[v],
            dirty_rate_mib_s=np.where(np.isnan(dirty), bw, dirty),  # unknown: as fast as the link moves
            dirty_rate_known=~np.isnan(dirty), resident_memory_mib=c.vm_resident_memory_mib[v],
            working_set_mib=c.vm_working_set_mib[v], dirty_at_floor=c.vm_dirty_at_floor[v],
            # the busier of the two hosts, as advice reads it (one not measured: the other's)
            load_per_cpu=np.where(sources >= 0, np.fmax(c.host_load_per_cpu[sources], load), load),
            bandwidth_mib_s=bw, postcopy_allowed=c.vm_postcopy[v] & self._postcopy_cluster[c.loads.vm_host[v]],
            max_downtime_ms=self.settings.max_downtime_ms, deadline_ms=self.settings.deadline_ms,
        )
        if not self._carried:
            return request
        return replace(request, disk_used_mib=c.vm_local_disk_used_mib[v], disk_size_mib=c.vm_local_disk_mib[v],
                       disk_write_rate_mib_s=c.vm_disk_write_rate_mib_s[v], cold=c.vm_cold[v])

    def price(self, vms: IntArray, targets: IntArray, bandwidth: FloatArray) -> CostEstimates:
        """Costs of moves the plan chose at `bandwidth`, by `pricing` when given (it keeps its own cache), else as
        `estimate`."""
        if self.pricing is None:
            return self.estimate(vms, targets, self.encrypted(vms, targets, bandwidth))
        return self.pricing.estimate(self._request(vms, targets, np.asarray(bandwidth, dtype=np.float64)))

    def seconds(self, vms: IntArray) -> FloatArray:
        """Median predicted time of moving each VM over its own host's link (before a target is known): a VM's is
        the same for the plan's life (its host before the plan, a cached row), so it is kept once read."""
        if vms.shape[0] == 0:
            return np.zeros(0)
        missing = vms[~self._seconds_known[vms]]
        if missing.shape[0]:
            sources = self.cluster.loads.vm_host[missing]
            rows = self._rows(missing, np.where(sources >= 0, sources, 0))
            self._seconds[missing] = self._costs.store.column("total_ms", rows)[:, 1] / 1000.0
            self._seconds_known[missing] = True
        seconds: FloatArray = self._seconds[vms]
        return seconds

    def prefetch(self, hosts: IntArray) -> None:
        """Cost every movable VM on `hosts` in one request (strategies call it with the hosts they will try next,
        so that costing is a few large batches rather than one per host)."""
        if hosts.size:
            chosen = np.zeros(self.cluster.n_hosts + 1, dtype=bool)  # [-1]: no host, never chosen
            chosen[hosts] = True
            vms = np.flatnonzero(chosen[self.cluster.loads.vm_host] & self.cluster.vm_movable)
            self.seconds(vms.astype(np.int64))

    # --- targets -----------------------------------------------------------------------------------------------

    def pool(self, key: str) -> IntArray | None:
        """Hosts to assess: None (all) for a small cluster, else the preferred `pool_size` (see module doc)."""
        c, s = self.cluster, self.settings
        if key == "all" or c.n_hosts <= s.pool_size:
            return None
        kept = self._pools.get(key)
        if kept is not None and len(self.records) - kept[1] < s.pool_refresh:
            return kept[0]
        ratio = self.work.cpu_ratio()
        loads = self.work.loads
        if key == "pack":
            score = np.where(c.host_disabled | (loads.host_vms == 0) | (ratio >= s.filters.max_cpu_after), np.inf,
                             -ratio)
        else:
            score = np.where(c.host_disabled, np.inf, ratio)
        chosen: IntArray = np.sort(np.argpartition(score, s.pool_size)[: s.pool_size]).astype(np.int64)
        self._pools[key] = (chosen, len(self.records))
        return chosen

    def assess(self, vm: int, excluded: BoolArray | None, pool: str) -> Assessment:
        hosts = self.pool(pool)
        loads, policy, left = self.work.loads, self.settings.filters, int(self.left[vm])
        a = assess(self.cluster, loads, vm, policy, excluded=excluded, left=left, view=self._view(hosts))
        if hosts is not None and not a.positions.shape[0]:
            a = assess(self.cluster, loads, vm, policy, excluded=excluded, left=left, view=self._view(None))
        return a

    def _view(self, hosts: IntArray | None) -> HostView:
        """The static columns of a pool (or of all hosts), kept while the pool is."""
        key = "all" if hosts is None else "pool"
        view = self._views.get(key)
        if view is None or (hosts is not None and view.index is not hosts):
            view = self._views[key] = HostView.of(self.cluster, hosts)
        return view

    def choose(self, vm: int, weights: Weights, *, excluded: BoolArray | None = None, pool: str = "spread",
               mean_cpu: float = 0.0) -> Choice | None:
        """The best eligible host for `vm`, or None (then `last_failure` says why)."""
        a = self.assess(vm, excluded, pool)
        if not a.positions.shape[0]:
            counts = rejections(self.cluster, self.work.loads, a, self.settings.filters, limit=3)
            self.last_failure = f"no eligible host among {a.hosts.shape[0]}: " + "; ".join(
                f"{f} {n} (e.g. {h}: {r})" for f, n, h, r in counts)
            return None
        scores = weigh(self.cluster, self.work.loads, a, weights, mean_cpu=mean_cpu, reference_w=self.reference_w,
                       power_w=self.work.power_w)
        return Choice(a, scores, scores.best())

    def check(self, vm: int, target: int) -> str:
        """'' when the move meets the limits, else why not."""
        rows = self._rows([vm], [target])
        if self._costs.store.column("meets_limits", rows)[0]:
            return ""
        est = self._costs.store.take(rows)
        return est.violation(0) or f"breaks a limit: {est.describe(0)}"

    # --- moves -------------------------------------------------------------------------------------------------

    def apply(self, vm: int, choice: Choice, why_vm: str, benefit: float, weights: Weights) -> None:
        c, a, s = self.cluster, choice.assessment, choice.scores
        source, target = int(self.work.loads.vm_host[vm]), choice.host
        top = s.order(self.settings.alternatives + 1)
        others = [int(p) for p in top if int(p) != choice.position][: self.settings.alternatives]

        def alt(p: int) -> Alternative:
            return Alternative(c.host_ids[int(s.hosts[p])], float(s.total[p]), float(s.cpu_after[p]),
                               float(s.memory_after[p]), describe(s, p, weights))

        scope = (f"{a.hosts.shape[0]} hosts assessed" if a.all_hosts else
                 f"{a.hosts.shape[0]} of {c.n_hosts} hosts assessed (the strategy's preferred pool)")
        runner = f"; next {c.host_ids[int(s.hosts[others[0]])]} score {s.total[others[0]]:.3f}" if others else ""
        chosen = alt(choice.position)
        why_host = f"{c.host_ids[target]}: lowest score of {len(s)} eligible, {scope}: {chosen.detail}{runner}"
        self.records.append(MoveRecord(
            vm, source, target, benefit, why_vm, why_host, int(a.hosts.shape[0]), len(s),
            rejections(c, self.work.loads, a, self.settings.filters), (chosen, *(alt(p) for p in others)),
        ))
        self.work.move(vm, target)
        self.moved[vm] = True
        self.refused.pop(vm, None)

    def undo(self, n: int) -> None:
        for _ in range(n):
            r = self.records.pop()
            self.work.move(r.vm, r.source)
            self.moved[r.vm] = False

    def drop(self, vms: set[int]) -> None:
        """Take back the moves of `vms` wherever they are in the plan (only safe when no later move needs the room
        they free, as in a drain, whose targets are never sources)."""
        for r in [r for r in self.records if r.vm in vms]:
            self.work.move(r.vm, r.source)
            self.moved[r.vm] = False
        self.records = [r for r in self.records if r.vm not in vms]

    def refuse(self, vm: int, kind: str, reason: str, target: int = NO_HOST, postponed: bool = False) -> None:
        c = self.cluster
        source = int(c.loads.vm_host[vm])
        self.refused[vm] = Refusal(c.vm_ids[vm], c.host_ids[source] if source >= 0 else "",
                                   c.host_ids[target] if target >= 0 else "", kind, reason, postponed)

    @property
    def full(self) -> bool:
        return len(self.records) >= self.cap

    # --- the plan ----------------------------------------------------------------------------------------------

    def finish(self, strategy: str, parameters: Mapping[str, object], summary: str, benefit_unit: str, *,
               power: PowerAdvice | None = None, dry_run: Sequence[Refusal] = (), longest_first: bool = False) -> Plan:
        c, recs = self.cluster, self.records
        vms = np.array([r.vm for r in recs], dtype=np.int64)
        targets = np.array([r.target for r in recs], dtype=np.int64)
        sources = np.array([r.source for r in recs], dtype=np.int64)
        limits = self.settings.concurrency
        # each move priced alone, then at the share of its links of the case each schedule starts it in
        prices = CasePrices(self.price, vms, sources, targets, c.host_bandwidth_mib_s, limits) if recs else None
        order = np.arange(len(recs))
        if prices is not None and longest_first:
            order = np.argsort(-prices.alone().total_ms[:, 2], kind="stable")
        median, p90, taken = prices.schedules(order) if prices is not None else (
            Schedule.empty(), Schedule.empty(), None)
        moves, links = [], self.cluster.host_bandwidth_mib_s
        wave, start_s, end_s = median.wave.tolist(), median.start_s.tolist(), median.end_s.tolist()
        for k, i in enumerate(order.tolist()):
            r = recs[i]
            assert taken is not None
            explanation = Explanation(r.why_vm, r.why_host, taken.why_technique(k), r.assessed, r.eligible,
                                      r.rejections, r.alternatives)
            # The parameters carry the whole link: the executor gives each its share when it starts.
            chosen = taken.parameters(k, float(np.minimum(links[r.source], links[r.target])))
            moves.append(PlannedMove(
                c.vm_ids[r.vm], c.host_ids[r.source], c.host_ids[r.target], r.vm, r.source, r.target,
                taken.cost(k), chosen, float(taken.p_converge[k]), r.benefit, wave[k], start_s[k], end_s[k],
                explanation, float(taken.bandwidth_mib_s[k]),
            ))
        moves.sort(key=lambda m: (m.start_s, m.wave))
        timing = (f" {counted(len(moves), 'move')} in {counted(median.waves, 'wave')} at "
                  f"{limits.per_source}/{limits.per_target}/{limits.cluster} concurrent per source/target/cluster: "
                  f"about {median.duration_s:.0f} s (p90 {p90.duration_s:.0f} s) starting each move as a slot frees, "
                  f"{median.barrier_s:.0f} s if each wave waits for its slowest." if moves else " No move.")
        return Plan(strategy, dict(parameters), tuple(moves), tuple(self.refused.values()), summary + timing,
                    (self.pricing or self.costs).name, benefit_unit, median.duration_s, p90.duration_s, median.waves,
                    c.n_hosts, c.with_loads(self.work.loads.copy()), tuple(dry_run), power)


def movable(planner: Planner, vms: IntArray, *, ignore_cooldown: bool = False) -> BoolArray:
    """VMs a strategy may move now: not pinned or migrating, not moved by this plan, not cooling down."""
    ok: BoolArray = planner.cluster.vm_movable[vms] & ~planner.moved[vms]
    if not ignore_cooldown:
        ok &= ~planner.cooling[vms]
    return ok
