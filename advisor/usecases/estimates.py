"""The cost of moving a VM, as advice and plans both need it: inputs from what the advisor observed (through the
one inputs builder, advisor.features.inputs), a dirty-rate forecast from the VM's recent samples, and the
predicted cost of each technique at the expected dirty rate, its upper bounds widened to cover a burst."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from advisor.domain.model import Host, MigrationCost, MigrationInputs, Technique, Vm
from advisor.features.inputs import Overrides, VmObservations, migration_inputs
from advisor.features.samples import RecentSamples
from advisor.ml.forecast import DirtyRateForecaster
from advisor.ml.predictor import CostPredictor, widen_for_burst
from advisor.usecases.ports import Clock


class CostEstimator:
    def __init__(self, predictor: CostPredictor, forecaster: DirtyRateForecaster | None, samples: RecentSamples,
                 clock: Clock) -> None:
        self.predictor = predictor
        self.forecaster = forecaster
        self._samples = samples
        self._clock = clock

    def inputs(self, vm: Vm, source: Host, target: Host | None, overrides: Overrides = Overrides()) -> MigrationInputs:  # noqa: B008 - frozen dataclass defaults are safe to share
        forecast = None
        forecaster = self.forecaster
        if overrides.dirty_rate_mib_s is None and forecaster is not None:
            times, values = self._samples.vm_window(vm.id)
            forecast = forecaster.forecast(times, values, self._samples.vm_fields, self._clock())
        observed = VmObservations(self._samples.vm_latest(vm.id, "dirty_rate_mib_s"),
                                  self._samples.vm_latest(vm.id, "memory_used_mib"),
                                  self._samples.vm_latest(vm.id, "working_set_mib"))
        return migration_inputs(vm, source, target, observed, forecast, overrides)

    def swap(self, predictor: CostPredictor | None = None, forecaster: DirtyRateForecaster | None = None) -> None:
        """Serve newly promoted models from the next prediction on. A prediction under way keeps the models it
        began with (each call reads them once), so none fails or mixes two versions."""
        if predictor is not None:
            self.predictor = predictor
        if forecaster is not None:
            self.forecaster = forecaster

    def costs(self, inputs: MigrationInputs, techniques: Sequence[Technique] = tuple(Technique)) -> list[MigrationCost]:
        """Costs at the expected dirty rate, widened to cover a burst to its p90 forecast when there is one."""
        predictor = self.predictor
        rows = [(inputs, t) for t in techniques]
        burst = inputs.burst_dirty_rate_mib_s
        if burst is None:
            return predictor.predict_many(rows)
        # One call for both: a model call costs more than its rows.
        both = predictor.predict_many([*rows, *((replace(inputs, dirty_rate_mib_s=burst), t) for t in techniques)])
        costs, at_burst = both[: len(rows)], both[len(rows):]
        return [widen_for_burst(c, b, burst) for c, b in zip(costs, at_burst, strict=True)]
