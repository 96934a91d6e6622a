"""The cost of moving a VM, as advice and plans both need it: inputs from what the advisor observed (through the
one inputs builder, advisor.features.inputs), a dirty-rate forecast from the VM's recent samples, and the
predicted cost of each technique at the expected dirty rate, its upper bounds widened to cover a burst. The live
techniques are the predictor's; cold migration's cost is a sum of steps (advisor.physics.cold), whatever model
serves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from advisor.domain.model import DirtyRateForecast, Host, MigrationCost, MigrationInputs, Objective, Technique, Vm
from advisor.features.inputs import LinkTraffic, Overrides, VmObservations, migration_inputs
from advisor.features.samples import RecentSamples
from advisor.ml.cost_batch import CostBatch, batch_with_disks, eager_batch, gathered, widened
from advisor.ml.forecast import DirtyRateForecaster
from advisor.ml.predictor import CostPredictor, predict_with_disks, widen_to_burst_medians
from advisor.physics import cold_cost
from advisor.usecases.ports import Clock


def objective_overrides(objective: Objective) -> Overrides:
    """What an objective says of a prediction's inputs, for advice and plans alike: its allowed downtime (validation
    refused 0) and its deadline, when it has one."""
    return Overrides(max_downtime_ms=objective.max_downtime_ms, deadline_ms=objective.deadline_ms or None)


class CostEstimator:
    """`cold_shutdown_timeout_ms`: what a cold move gives the guest to shut down (the technique policy's
    `TechniqueRules.cold_shutdown_timeout_ms`, so that what runs is what was predicted)."""

    def __init__(self, predictor: CostPredictor, forecaster: DirtyRateForecaster | None, samples: RecentSamples,
                 clock: Clock, cold_shutdown_timeout_ms: float = 60_000.0) -> None:
        self.predictor = predictor
        self.forecaster = forecaster
        self._samples = samples
        self._clock = clock
        self._cold_shutdown_timeout_ms = cold_shutdown_timeout_ms

    def inputs(self, vm: Vm, source: Host, target: Host | None, overrides: Overrides = Overrides(),  # noqa: B008 - frozen dataclass defaults are safe to share
               *, tls: bool = False) -> MigrationInputs:
        """With `tls`, the move's data is to be encrypted (its bandwidth less TLS's overhead)."""
        observed, forecast = self.observe(vm, forecast=overrides.dirty_rate_mib_s is None)
        return migration_inputs(vm, source, target, observed, forecast, overrides, self.traffic(source, target),
                                tls=tls, load_per_cpu=self.load_per_cpu(source, target))

    def load_per_cpu(self, source: Host, target: Host | None) -> float | None:
        """The busier host's newest runnable threads per CPU (both migrate: one sends, one receives); None where
        no sample of either says."""
        loads = [latest.value for host in (source, target) if host is not None
                 and (latest := self._samples.host_latest(host.id, "load_per_cpu")) is not None]
        return max(loads) if loads else None

    def traffic(self, source: Host, target: Host | None) -> LinkTraffic:
        """The traffic already on a move's link, from the hosts' newest network samples."""
        return LinkTraffic(self._samples.host_latest(source.id, "network_tx_mib_s"),
                           None if target is None else self._samples.host_latest(target.id, "network_rx_mib_s"))

    def observe(self, vm: Vm, *, forecast: bool = True) -> tuple[VmObservations, DirtyRateForecast | None]:
        """What recent samples say of `vm` and, when asked and a forecaster is served, its dirty-rate forecast: what
        `migration_inputs` builds a prediction's inputs from, whatever the target (plans keep it per VM)."""
        predicted = None
        if forecast and (forecaster := self.forecaster) is not None:
            predicted = forecaster.forecast(*self._samples.vm_window(vm.id), self._samples.vm_fields, self._clock())
        return self._observations(vm), predicted

    def observe_many(self, vms: Sequence[Vm]) -> list[tuple[VmObservations, DirtyRateForecast | None]]:
        """`observe` of each VM, their sample windows read many at a time (a plan prices thousands of VMs)."""
        return [(self._observations(vm), forecast) for vm, forecast in zip(vms, self._forecasts(vms), strict=True)]

    def _forecasts(self, vms: Sequence[Vm]) -> list[DirtyRateForecast | None]:
        """Each VM's dirty-rate forecast (None: no forecaster served, or too little history), their windows read
        many at a time, in one walk of the trees where the forecaster has it (`forecast_many`)."""
        forecaster = self.forecaster
        if forecaster is None:
            return [None] * len(vms)
        windows, fields, now = self._samples.vm_windows([vm.id for vm in vms]), self._samples.vm_fields, self._clock()
        many = getattr(forecaster, "forecast_many", None)
        if many is not None:
            forecasts: list[DirtyRateForecast | None] = many(windows, fields, now)
            return forecasts
        return [forecaster.forecast(*window, fields, now) for window in windows]

    def _observations(self, vm: Vm) -> VmObservations:
        """The newest sample of each measure `migration_inputs` reads."""
        return VmObservations(self._samples.vm_latest(vm.id, "dirty_rate_mib_s"),
                              self._samples.vm_latest(vm.id, "memory_used_mib"),
                              self._samples.vm_latest(vm.id, "working_set_mib"),
                              self._samples.vm_latest(vm.id, "cpu_utilization"),
                              self._samples.vm_latest(vm.id, "disk_write_rate_mib_s"),
                              self._samples.vm_latest(vm.id, "resident_memory_mib"))

    def swap(self, predictor: CostPredictor | None = None, forecaster: DirtyRateForecaster | None = None) -> None:
        """Serve newly promoted models from the next prediction on. A prediction under way keeps the models it
        began with (each call reads them once), so none fails or mixes two versions."""
        if predictor is not None:
            self.predictor = predictor
        if forecaster is not None:
            self.forecaster = forecaster

    def cost(self, inputs: MigrationInputs, technique: Technique) -> MigrationCost:
        """One technique's `costs`: how the executor predicts again a migration given a share of its links."""
        return self.costs(inputs, [technique])[0]

    def predict_many(self, rows: Sequence[tuple[MigrationInputs, Technique]]) -> list[MigrationCost]:
        """Each row's cost, in order: the live techniques' in one call of the served predictor (with their local
        disks' copy, `predict_with_disks`), cold's from its steps (its local disks copied while the guest is off)."""
        live = [row for row in rows if row[1].is_live]
        predicted = iter(predict_with_disks(self.predictor, live) if live else [])
        return [next(predicted) if t.is_live else cold_cost(inputs, self._cold_shutdown_timeout_ms,
                                                             local_disk_mib=inputs.local_disk_used_mib)
                for inputs, t in rows]

    def costs(self, inputs: MigrationInputs, techniques: Sequence[Technique] = tuple(Technique)) -> list[MigrationCost]:
        """Costs at the expected dirty rate, widened to cover a burst to its p90 forecast when there is one."""
        return self.costs_many([inputs], techniques)[0]

    def costs_many(self, many: Sequence[MigrationInputs],
                   techniques: Sequence[Technique] = tuple(Technique)) -> list[list[MigrationCost]]:
        """`costs` of each inputs, in one model call for them all (a model call costs more than its rows). The
        objects themselves, made from the model's batch (advisor.ml.cost_batch) for the rows answered: for the few
        rows of a question, cheaper than `priced_many`'s arrays, which give the same costs. A cost at the burst is
        never made: only its medians are read."""
        live = [(inputs, t) for inputs in many for t in techniques if t.is_live]
        at_burst_inputs = [replace(inputs, dirty_rate_mib_s=inputs.burst_dirty_rate_mib_s)
                           for inputs in many if inputs.burst_dirty_rate_mib_s is not None]
        bursts = [(inputs, t) for inputs in at_burst_inputs for t in techniques if t.is_live]
        batch = batch_with_disks(self.predictor, [*live, *bursts]) if live else eager_batch([])
        made, at_burst = iter(range(len(live))), iter(range(len(live), len(live) + len(bursts)))
        out = []
        for inputs in many:
            burst = inputs.burst_dirty_rate_mib_s
            costs = []
            for t in techniques:
                if not t.is_live:
                    costs.append(self._cold(inputs))
                elif burst is None:
                    costs.append(batch.cost(next(made)))
                else:
                    costs.append(widen_to_burst_medians(batch.cost(next(made)), batch.medians(next(at_burst)), burst))
            out.append(costs)
        return out

    def priced_many(self, many: Sequence[MigrationInputs],
                    techniques: Sequence[Technique] = tuple(Technique)) -> CostBatch:
        """`costs_many` as one batch (advisor.ml.cost_batch), row k * len(techniques) + j the j-th technique of
        the k-th inputs: arrays for all, a row's MigrationCost made when asked for, the very one `costs_many` makes
        (a plan prices every technique of thousands of moves and keeps one cost per move)."""
        rows = [(inputs, t) for inputs in many for t in techniques]
        bursts = [replace(inputs, dirty_rate_mib_s=inputs.burst_dirty_rate_mib_s)
                  for inputs in many if inputs.burst_dirty_rate_mib_s is not None]
        at_burst = [(at, t) for at in bursts for t in techniques if t.is_live]
        live = [k for k, (_, t) in enumerate(rows) if t.is_live]
        cold = [k for k, (_, t) in enumerate(rows) if not t.is_live]
        predicted = batch_with_disks(self.predictor, [rows[k] for k in live] + at_burst) if live else None
        parts: list[tuple[Sequence[int], CostBatch]] = [] if predicted is None else [(live, predicted)]
        if cold:
            parts.append((cold, eager_batch([self._cold(rows[k][0]) for k in cold])))
        batch = gathered(len(rows), parts)
        if not bursts or predicted is None:
            return batch
        # each live technique of an inputs with a burst, widened by its row at the burst (a burst changes nothing
        # of a cold move)
        with_burst = [k for k, (inputs, t) in enumerate(rows) if inputs.burst_dirty_rate_mib_s is not None
                      and t.is_live]
        rates = [rows[k][0].burst_dirty_rate_mib_s or 0.0 for k in with_burst]
        return widened(batch, with_burst, predicted, range(len(live), len(live) + len(at_burst)), rates)

    def _cold(self, inputs: MigrationInputs) -> MigrationCost:
        return cold_cost(inputs, self._cold_shutdown_timeout_ms, local_disk_mib=inputs.local_disk_used_mib)
