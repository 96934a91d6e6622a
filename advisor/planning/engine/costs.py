"""What a move will cost, as the engine asks for it: the `MoveCosts` protocol and the technique choice over arrays.

The engine never predicts costs itself. It hands a batch of candidate moves (`CostRequest`: VM and target indexes,
memory to copy, dirty rate, usable bandwidth, whether post-copy is allowed, the limits) to whatever implements
`MoveCosts` and reads back, per move, the chosen technique with its predicted time, downtime and data (p10,
median, p90), whether it converges and how likely, and the migration parameters (`CostEstimates`). The default
is the analytic model (`AnalyticMoveCosts`, below); the project plugs its learned model in behind the same
protocol (advisor.ml.move_costs.LearnedMoveCosts; the use cases price the moves a plan chooses as advice does,
advisor.usecases.plan_costs).

`select` is the technique policy of `planning.technique.choose_technique` over arrays, shared by every
implementation: limits are checked against the p90; among the techniques meeting them the lowest
median + risk x (p90 - median) wins, post-copy's harm (exposure and slowdown) added to its rank, unless no
pre-copy meets them and a converging one is over the downtime limit by less than post-copy's harm (then it is
chosen and counts as meeting them); when none does, post-copy if allowed, else as the fallback rule says.

`AnalyticMoveCosts` is the physics alone (advisor.physics) behind the protocol: the interval is the analytic
model's sensitivity band (dirty rate 20% lower / 25% higher with 10% less bandwidth), and the probability of
converging is the share of those three cases that converge: a coarse stand-in for the calibrated figures the
learned model gives.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Protocol

import numpy as np

from advisor.domain.model import DEFAULT_MAX_DOWNTIME_MS, Technique
from advisor.physics import ANALYTIC_MODEL, DEFAULT_CONSTANTS, TECHNIQUES, AnalyticConstants, analytic_arrays
from advisor.planning.engine.carried import Steps, add_disks, memory_bandwidth, with_cold
from advisor.planning.engine.estimates import CHOICES, COLD, CostEstimates
from advisor.planning.engine.kernels import sorted_cases
from advisor.planning.engine.snapshot import BoolArray, FloatArray, IntArray
from advisor.planning.postcopy_price import postcopy_exposure_ms, postcopy_harm_ms, postcopy_slowdown
from advisor.planning.technique import (
    TechniqueRules,
)

__all__ = ["CHOICES", "COLD", "POSTCOPY", "TECHNIQUES", "AnalyticMoveCosts", "CostCache", "CostEstimates",
           "CostRequest", "MoveCosts", "select"]

POSTCOPY = TECHNIQUES.index(Technique.POSTCOPY)
# Preference when ranks tie, as planning.technique: the least risky, least CPU-hungry first.
_PREFERENCE = np.array([0, 2, 1, 3, 4], dtype=np.float64)


@dataclass(frozen=True)
class CostRequest:
    """Candidate moves, one row each. Limits of 0 mean none."""

    vm: IntArray
    target: IntArray
    memory_mib: FloatArray
    dirty_rate_mib_s: FloatArray
    bandwidth_mib_s: FloatArray
    postcopy_allowed: BoolArray
    max_downtime_ms: float = DEFAULT_MAX_DOWNTIME_MS
    deadline_ms: float = 0.0
    minimize_data: bool = False
    # The VMs' configured memory: where memory_mib equals it, memory in use was not measured.
    memory_configured_mib: FloatArray | None = None
    # What the moves carry beyond memory (advisor.planning.engine.carried); None: nothing, in any row.
    disk_used_mib: FloatArray | None = None  # the local disks' space in use: what the mirror copies
    disk_size_mib: FloatArray | None = None  # their size: the most the guest can rewrite
    disk_write_rate_mib_s: FloatArray | None = None  # what the guest writes to them; NaN: not measured
    cold: BoolArray | None = None  # a cold move asked for (the VM's label advisor.technique=cold)
    # What each VM's QEMU process holds resident (advisor.physics.first_pass_mib estimates the first pass from it);
    # NaN: not measured, None: in no row. Read by the learned models' costs; AnalyticMoveCosts sends memory_mib.
    resident_memory_mib: FloatArray | None = None
    # False where nothing measured the dirty rate and `dirty_rate_mib_s` holds the link's speed; None: all measured
    dirty_rate_known: BoolArray | None = None
    # What advice measures beside it, read by the learned models' costs (AnalyticMoveCosts does not): the MiB the
    # longer page-sampling window saw rewritten, a busy guest's reading at page sampling's floor, the busier
    # host's runnable threads per CPU (NaN: not measured; None: in no row).
    working_set_mib: FloatArray | None = None
    dirty_at_floor: BoolArray | None = None
    load_per_cpu: FloatArray | None = None

    def memory_bandwidth(self) -> FloatArray:
        """The bandwidth each row's memory is predicted at (less its local disks' writes, mirrored beside it)."""
        return memory_bandwidth(np.asarray(self.bandwidth_mib_s, np.float64), self.disk_used_mib,
                                self.disk_write_rate_mib_s)

    def add_disks(self, total_ms: FloatArray, downtime_ms: FloatArray, data_mib: FloatArray, converges: BoolArray,
                  p_converge: FloatArray) -> None:
        """Add the local disks' copy to per-technique predictions of memory (`carried.add_disks`), in place."""
        add_disks(self.disk_used_mib, self.disk_size_mib, self.disk_write_rate_mib_s,
                  np.asarray(self.bandwidth_mib_s, np.float64), total_ms, downtime_ms, data_mib, converges,
                  p_converge)

    def __len__(self) -> int:
        return int(self.vm.shape[0])


class CostStore:
    """Estimates appended batch by batch into arrays that double when full (no quadratic re-concatenation)."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}
        self._n = 0
        self._models: list[str] = []

    def append(self, est: CostEstimates) -> int:
        base, n = self._n, len(est)
        for f in fields(CostEstimates):
            if f.name == "model":
                continue
            value = np.asarray(getattr(est, f.name))
            have = self._arrays.get(f.name)
            if have is None or have.shape[0] < base + n:
                grown = np.zeros((max(64, 2 * (base + n)), *value.shape[1:]), dtype=value.dtype)
                if have is not None:
                    grown[:base] = have[:base]
                self._arrays[f.name] = have = grown
            have[base : base + n] = value
        if est.model not in self._models:
            self._models.append(est.model)
        self._n += n
        return base

    def take(self, rows: IntArray) -> CostEstimates:
        values = {name: a[rows] for name, a in self._arrays.items()}
        return CostEstimates(model=", ".join(self._models), **values)

    def column(self, name: str, rows: IntArray) -> np.ndarray:
        """One field of `rows` (ranking reads the median time of tens of thousands of rows, nothing else)."""
        return self._arrays[name][rows]


class CostCache:
    """Estimates kept by (VM, usable bandwidth) for a plan's life. A bandwidth that is one of the hosts' links (a
    handful of distinct values) is looked up in an array by VM and link, in numpy; any other (a share of a link)
    in a dict."""

    MAX_LINKS = 8  # beyond this many distinct links, a (VMs x links) array would cost more than it saves

    def __init__(self, n_vms: int, links: FloatArray) -> None:
        self.links = np.unique(links)
        self.store = CostStore()
        by_link = self.links.shape[0] <= self.MAX_LINKS
        self._by_link = np.full((n_vms, self.links.shape[0]), -1, dtype=np.int64) if by_link else None
        self._other: dict[tuple[int, float], int] = {}

    def _split(self, bandwidth: FloatArray) -> tuple[IntArray, BoolArray]:
        """Each bandwidth's link column, and whether it is exactly that link (else it goes by the dict)."""
        if self._by_link is None or self.links.shape[0] == 0:
            return np.zeros(bandwidth.shape[0], dtype=np.int64), np.zeros(bandwidth.shape[0], dtype=bool)
        column = np.minimum(np.searchsorted(self.links, bandwidth), self.links.shape[0] - 1)
        return column, self.links[column] == bandwidth

    def link_columns(self, links: FloatArray) -> IntArray | None:
        """The column of each of these links (None when links go by the dict): the usable bandwidth of two hosts
        is the lower link, so its column is the lower of theirs."""
        if self._by_link is None:
            return None
        columns: IntArray = np.searchsorted(self.links, links).astype(np.int64)
        return columns

    def rows(self, vms: IntArray, bandwidth: FloatArray, column: IntArray | None = None) -> IntArray:
        """The store's row of each (VM, bandwidth), -1 where not costed yet; `column`, when given, is each
        bandwidth's link column (see `link_columns`)."""
        if column is not None and self._by_link is not None:
            by_link: IntArray = self._by_link[vms, column]
            return by_link
        column, is_link = self._split(bandwidth)
        found = np.full(vms.shape[0], -1, dtype=np.int64)
        if self._by_link is not None:
            found[is_link] = self._by_link[vms[is_link], column[is_link]]
        for k in np.flatnonzero(~is_link).tolist():
            found[k] = self._other.get((int(vms[k]), float(bandwidth[k])), -1)
        return found

    def add(self, vms: IntArray, bandwidth: FloatArray, estimates: CostEstimates) -> None:
        """Keep `estimates` (one row per (VM, bandwidth), none costed yet)."""
        base = self.store.append(estimates)
        rows = base + np.arange(vms.shape[0], dtype=np.int64)
        column, is_link = self._split(bandwidth)
        if self._by_link is not None:
            self._by_link[vms[is_link], column[is_link]] = rows[is_link]
        for k in np.flatnonzero(~is_link).tolist():
            self._other[(int(vms[k]), float(bandwidth[k]))] = int(rows[k])


class MoveCosts(Protocol):
    """Predicts many moves at once; the engine calls it in batches and caches by VM and bandwidth."""

    @property
    def name(self) -> str: ...

    def estimate(self, request: CostRequest) -> CostEstimates: ...


def select(
    request: CostRequest,
    total_ms: FloatArray,
    downtime_ms: FloatArray,
    data_mib: FloatArray,
    converges: BoolArray,
    p_converge: FloatArray,
    rules: TechniqueRules,
    model: str,
    cold: Steps | None = None,
) -> CostEstimates:
    """Choose a technique per row from per-technique predictions shaped (len(TECHNIQUES), n, 3) (converges and
    p_converge (len(TECHNIQUES), n)); cold as planning.technique's `cold_rule` decides (carried.with_cold; `cold`:
    each row's cold (total, downtime, MiB), (n, 3) each; by default cold's steps at the row's bandwidth)."""
    n = len(request)
    bandwidth = np.asarray(request.bandwidth_mib_s, np.float64)
    usable = np.array([t in rules.techniques for t in TECHNIQUES])[:, None]
    allowed = usable & np.ones((len(TECHNIQUES), n), dtype=bool)
    allowed[POSTCOPY] &= request.postcopy_allowed
    is_post = (np.arange(len(TECHNIQUES)) == POSTCOPY)[:, None]
    feasible = allowed & (is_post | converges)
    if request.max_downtime_ms > 0:
        feasible &= downtime_ms[:, :, 2] <= request.max_downtime_ms
    if request.deadline_ms > 0:
        feasible &= total_ms[:, :, 2] <= request.deadline_ms
    quantity = data_mib if request.minimize_data else total_ms
    rank = quantity[:, :, 1] + rules.risk * (quantity[:, :, 2] - quantity[:, :, 1])
    harm = postcopy_harm_ms(postcopy_exposure_ms(data_mib[POSTCOPY, :, 1], bandwidth),
                            postcopy_slowdown(np.asarray(request.dirty_rate_mib_s, np.float64), bandwidth),
                            rules.postcopy_exposure_weight)
    rank[POSTCOPY] += harm * bandwidth / 1000 if request.minimize_data else harm
    tie = _PREFERENCE[:, None] * 1e-9 * (1.0 + np.abs(rank))
    best = np.argmin(np.where(feasible, rank + tie, np.inf), axis=0)
    any_ok = feasible.any(axis=0)
    # Where post-copy is allowed and no pre-copy meets every limit: the converging pre-copy within the deadline
    # whose p90 downtime is over the limit by no more than post-copy's harm (planning.technique's `_calm_precopy`).
    candidates = allowed & ~is_post & converges
    if request.deadline_ms > 0:
        candidates &= total_ms[:, :, 2] <= request.deadline_ms
    least_down = np.where(candidates, downtime_ms[:, :, 2] + tie, np.inf)
    over = least_down.min(axis=0) - (request.max_downtime_ms or DEFAULT_MAX_DOWNTIME_MS)
    calm = allowed[POSTCOPY] & ~(feasible & ~is_post).any(axis=0) & (over <= harm)
    fallback_post = allowed[POSTCOPY] & ~any_ok
    lowest_down = np.argmin(np.where(allowed, downtime_ms[:, :, 2] + tie, np.inf), axis=0)
    if rules.fallback == "likeliest":  # most likely to converge, ties to the lowest p90 downtime
        order = np.where(allowed, p_converge - 1e-6 * np.argsort(np.argsort(downtime_ms[:, :, 2], axis=0), axis=0),
                         -np.inf)
        fallback = np.argmax(order, axis=0)
    elif rules.fallback == "autoconverge":
        auto = TECHNIQUES.index(Technique.PRECOPY_AUTOCONVERGE)
        fallback = np.where(allowed[auto], auto, lowest_down)
    else:
        fallback = lowest_down
    chosen = np.where(calm, np.argmin(least_down, axis=0),
                      np.where(any_ok, best, np.where(fallback_post, POSTCOPY, fallback))).astype(np.int64)
    rows = np.arange(n)
    pick_total, pick_down = total_ms[chosen, rows], downtime_ms[chosen, rows]
    max_down = np.full(n, request.max_downtime_ms or DEFAULT_MAX_DOWNTIME_MS)
    deadline = np.full(n, request.deadline_ms) if request.deadline_ms > 0 else np.maximum(
        rules.deadline_floor_ms, rules.deadline_slack * pick_total[:, 2])
    after = np.where(chosen == POSTCOPY, 0.0, np.where(request.postcopy_allowed & usable[POSTCOPY, 0],
                                                       rules.postcopy_safety_factor * pick_total[:, 2], np.nan))
    est = CostEstimates(
        model=model, technique=chosen, total_ms=pick_total, downtime_ms=pick_down, data_mib=data_mib[chosen, rows],
        converges=converges[chosen, rows] | (chosen == POSTCOPY), p_converge=p_converge[chosen, rows],
        meets_limits=feasible[chosen, rows] | calm, bandwidth_mib_s=bandwidth,
        max_downtime_ms=max_down, deadline_ms=deadline, postcopy_after_ms=after,
        rank_ms=np.where(allowed, rank, np.inf).T.copy(), feasible=feasible.T.copy(), shutdown_timeout_ms=np.zeros(n),
        cold_asked=np.zeros(n, dtype=bool),
    )
    return with_cold(est, rules, any_ok, asked=request.cold, bandwidth_mib_s=bandwidth,
                     disk_used_mib=request.disk_used_mib, max_downtime_ms=request.max_downtime_ms,
                     deadline_ms=request.deadline_ms, steps=cold)


class AnalyticMoveCosts:
    """MoveCosts from the analytic model alone; `rules` choose among `rules.techniques`."""

    def __init__(self, rules: TechniqueRules | None = None, constants: AnalyticConstants = DEFAULT_CONSTANTS) -> None:
        self.rules = rules or TechniqueRules()
        self.constants = constants

    @property
    def name(self) -> str:
        return f"{ANALYTIC_MODEL.name} {ANALYTIC_MODEL.version}"

    def estimate(self, request: CostRequest) -> CostEstimates:
        n, t = len(request), len(TECHNIQUES)
        code = np.repeat(np.arange(t), n)
        memory = np.tile(np.asarray(request.memory_mib, np.float64), t)
        dirty = np.tile(np.asarray(request.dirty_rate_mib_s, np.float64), t)
        bandwidth = np.tile(request.memory_bandwidth(), t)
        limit = request.max_downtime_ms or DEFAULT_MAX_DOWNTIME_MS

        # the three cases (dirty rate 20% lower; as measured; 25% higher with 10% less bandwidth) in one call of
        # the physics, which is elementwise: one pass over its rounds instead of three
        a = analytic_arrays(np.tile(code, 3), np.tile(memory, 3),
                            np.concatenate([dirty * 0.8, dirty, dirty * 1.25]),
                            np.concatenate([bandwidth, bandwidth, bandwidth * 0.9]),
                            np.concatenate([bandwidth, bandwidth, bandwidth * 0.9]), limit, self.constants)

        def band(x: FloatArray) -> FloatArray:
            """(low, median, high) of the three cases, sorted (the downtime is a sawtooth in the dirty rate, so
            the middle case is not always the middle value), as the physics' own band."""
            banded: FloatArray = np.empty((t * n, 3))
            sorted_cases(x, t * n, banded)  # np.sort(x.reshape(3, t * n).T, axis=-1), several times faster
            return banded.reshape(t, n, 3)

        converged = a.converges.reshape(3, t, n)
        total, down, data = band(a.total_time_ms), band(a.downtime_ms), band(a.transferred_mib)
        converges, p_converge = converged[1].copy(), converged.mean(axis=0)
        request.add_disks(total, down, data, converges, p_converge)
        return select(request, total, down, data, converges, p_converge, self.rules, self.name)
