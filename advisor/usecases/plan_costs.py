"""A plan's moves priced the way advice prices one VM's move (advisor.usecases.advice), so that a plan stores,
and its outcomes are learned from, the same inputs and predictions as advice.

The engine ranks its 10^4-10^5 candidate rows with `LearnedMoveCosts`, from the snapshot's arrays alone. The moves
it chooses are priced by `AdviceMoveCosts`, the engine's `MoveCosts` over the advice path, alone on their links
and at the share of the links a schedule starts them with (advisor.planning.engine.case_prices): for each VM,
target and bandwidth, the inputs `migration_inputs` builds from the VM, its source and target hosts (the source's
`advisor.profile`), its recent samples (memory in use, working set) and its dirty-rate forecast, with the
objective's limits (`objective_overrides`) and, where the move shares a link, its share as the cap; the costs of
every technique from the served predictor in one call, widened for a burst as advice widens them
(`CostEstimator.costs_many`); the technique by the engine's `select`, row for row advice's `choose_technique`, cold
included where the rules allow it (priced by its steps beside the live techniques: moved cold where the VM asks
for it or cold alone meets every limit; a VM asking for cold where the rules forbid it meets no limit, and the
plan refuses it with the reason). What was priced is kept (`priced`), so each move is stored with the very
inputs and prediction it was scheduled with.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np

from advisor.domain.errors import FailedPrecondition
from advisor.domain.model import (
    DirtyRateForecast,
    Host,
    MigrationCost,
    MigrationInputs,
    Objective,
    Technique,
    Vm,
)
from advisor.domain.transport import TlsMode, Transport, transport
from advisor.features.inputs import Overrides, VmObservations, migration_inputs
from advisor.ml.cost_batch import CostBatch
from advisor.ml.move_costs import estimates
from advisor.planning import engine
from advisor.planning.engine.halves import in_halves
from advisor.planning.engine.snapshot import FloatArray
from advisor.planning.technique import TechniqueRules
from advisor.usecases.estimates import CostEstimator, objective_overrides

# (VM index, target index, bandwidth priced at) in the snapshot planned on
Key = tuple[int, int, float]


class AdviceMoveCosts:
    """The engine's MoveCosts by the advice path, for one plan on `cluster` (its VMs and hosts in the inventory
    `vms` and `hosts`). It keeps every VM's observations and forecast and every row it priced for its life."""

    def __init__(self, estimator: CostEstimator, cluster: engine.ClusterArrays, vms: Mapping[str, Vm],
                 hosts: Mapping[str, Host], objective: Objective, rules: TechniqueRules,
                 tls: TlsMode = TlsMode.OFF) -> None:
        self._estimator = estimator
        self._cluster = cluster
        self._vms = vms
        self._hosts = hosts
        self._overrides = objective_overrides(objective)
        self.rules = rules
        self._tls = tls
        self._techniques = tuple(t for t in engine.TECHNIQUES if t in rules.techniques)
        self._priced_techniques = (*self._techniques, Technique.COLD) if rules.cold_allowed else self._techniques
        self._observed: dict[str, tuple[VmObservations, DirtyRateForecast | None]] = {}
        # every row priced: its place among them by key, its inputs, and its batch (advisor.ml.cost_batch) with
        # the place of its first row there; its costs as arrays (row, technique priced, ...) across batches
        self._priced: dict[Key, int] = {}
        self._inputs_of: list[MigrationInputs] = []
        self._batch_of: list[tuple[CostBatch, int]] = []
        self._parts: list[tuple[FloatArray, ...]] = []
        t = len(self._priced_techniques)
        self._arrays: tuple[FloatArray, ...] = (np.zeros((0, t, 3)), np.zeros((0, t, 3)), np.zeros((0, t, 3)),
                                                np.zeros((0, t)), np.zeros((0, t)), np.zeros(0))

    @property
    def name(self) -> str:
        m = self._estimator.predictor.model
        return f"{m.name} {m.version}" + (f" (fallback: {m.fallback_reason})" if m.fallback_reason else "")

    def priced(self, vm: int, target: int, bandwidth_mib_s: float, technique: Technique
               ) -> tuple[MigrationInputs, MigrationCost]:
        """The inputs and the predicted cost of `technique` of a row this has priced."""
        row = self._priced[(vm, target, bandwidth_mib_s)]
        batch, first = self._batch_of[row]
        column = self._priced_techniques.index(technique)
        return self._inputs_of[row], batch.cost((row - first) * len(self._priced_techniques) + column)

    def estimate(self, request: engine.CostRequest) -> engine.CostEstimates:
        keys: list[Key] = list(zip(request.vm.tolist(), request.target.tolist(), request.bandwidth_mib_s.tolist(),
                                   strict=True))
        missing = list(dict.fromkeys(k for k in keys if k not in self._priced))
        if missing:
            self._price(missing)
        total, down, data, converges, p, dirty = self._arrays
        rows = np.array([self._priced[key] for key in keys], dtype=np.int64)
        # the technique is chosen from the dirty rate advice reads (unknown: post-copy's slowdown not priced, as
        # choose_technique does)
        request = replace(request, dirty_rate_mib_s=dirty[rows])
        used = [k for k, t in enumerate(engine.TECHNIQUES) if t in self._techniques]
        columns = [self._priced_techniques.index(engine.TECHNIQUES[k]) for k in used]
        arrays: tuple[FloatArray, ...] = ()
        if columns and rows.shape[0]:  # technique by technique, every request row in each
            arrays = tuple(np.concatenate([a[rows, j] for j in columns]) for a in (total, down, data, converges, p))
        steps = None
        if self.rules.cold_allowed:  # cold's steps as priced, for the engine's `select` to weigh
            cold = self._priced_techniques.index(Technique.COLD)
            steps = (total[rows, cold], down[rows, cold], data[rows, cold])
        return estimates(request, used, arrays, self.rules, self.name, cold=steps)

    def _price(self, keys: list[Key]) -> None:
        """Price these rows, every technique priced of each, in one batch (two halves at once when large: each
        row's costs depend on its inputs alone)."""
        self._observe({vm for vm, _, _ in keys})
        many = [self._inputs(*key) for key in keys]
        first = len(self._inputs_of)
        self._inputs_of += many
        for rows, batch in in_halves(len(many), lambda rows: (rows, self._estimator.priced_many(
                many[rows], self._priced_techniques))):
            for k in range(rows.start, rows.stop):
                self._priced[keys[k]] = first + k
                self._batch_of.append((batch, first + rows.start))
            shape = (rows.stop - rows.start, len(self._priced_techniques))
            total, down, data, converges, p = batch.columns()
            self._parts.append((total.reshape(*shape, 3), down.reshape(*shape, 3), data.reshape(*shape, 3),
                                converges.reshape(shape), p.reshape(shape),
                                np.array([i.dirty_rate_mib_s if i.dirty_rate_known else 0.0 for i in many[rows]],
                                         dtype=np.float64)))
        self._arrays = tuple(np.concatenate(columns) for columns in zip(*self._parts, strict=True))

    def _observe(self, vms: set[int]) -> None:
        """Keep what the samples say of these VMs (of those in the inventory) not kept yet, their windows read many
        at a time."""
        c = self._cluster
        new = [v for k in sorted(vms) if (v := self._vms.get(c.vm_ids[k])) is not None and v.id not in self._observed]
        self._observed.update(zip((v.id for v in new), self._estimator.observe_many(new), strict=True))

    def _inputs(self, vm: int, target: int, bandwidth_mib_s: float) -> MigrationInputs:
        c = self._cluster
        source = int(c.loads.vm_host[vm])
        v = self._vms.get(c.vm_ids[vm])
        s = self._hosts.get(c.host_ids[source]) if source >= 0 else None
        t = self._hosts.get(c.host_ids[target])
        if v is None or s is None or t is None:
            raise FailedPrecondition(f"VM {c.vm_ids[vm]!r} or its hosts changed while the plan was made; try again")
        if v.id not in self._observed:
            self._observed[v.id] = self._estimator.observe(v)
        observed, forecast = self._observed[v.id]
        link = min(s.network_bandwidth_mib_s, t.network_bandwidth_mib_s)
        # a move sharing a link is priced at its share: the cap it gets (the executor records the one it gets)
        overrides: Overrides = (replace(self._overrides, max_bandwidth_mib_s=bandwidth_mib_s)
                                if bandwidth_mib_s < link else self._overrides)
        return migration_inputs(v, s, t, observed, forecast, overrides, self._estimator.traffic(s, t),
                                tls=transport(self._tls, s, t).tls, load_per_cpu=self._estimator.load_per_cpu(s, t))

    def transport(self, source_id: str, target_id: str) -> Transport:
        """How a move between these hosts (of a row this has priced) travels: the setting migration_tls and the
        hosts' TLS."""
        return transport(self._tls, self._hosts[source_id], self._hosts[target_id])

