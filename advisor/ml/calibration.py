"""How accurate the predictions have been lately: the running error of each model version, per technique,
quantity and host profile.

Each executed migration that succeeded gives, for total time, downtime and data, the absolute error of the
median prediction relative to what was measured, and whether the measure fell inside the predicted interval.
Over the last `window` migrations per technique (of one model version, on hosts of one profile), the median of
those errors is the running error, and the share inside the interval the coverage; a running error above
`drift_error` (with at least `min_n` migrations) is drift: the model no longer describes these hosts, and it
should be retrained.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from statistics import median

from advisor.domain.migration import MigrationResult
from advisor.domain.model import MigrationCost

QUANTITIES = ("total_time_ms", "downtime_ms", "transferred_mib")


@dataclass(frozen=True)
class RunningError:
    technique: str
    quantity: str
    n: int
    median_ape: float  # median |predicted median - actual| / actual
    coverage: float  # share of actual values inside the predicted interval
    drift: bool
    model: str  # "name version" of the model that made these predictions
    profile: str = ""  # the hosts' profile ("" for hosts without an advisor.profile label)


class RunningErrors:
    def __init__(self, window: int = 50, drift_error: float = 0.5, min_n: int = 10) -> None:
        self._window, self._drift, self._min_n = window, drift_error, min_n
        self._lock = threading.Lock()
        self._seen: dict[tuple[str, str, str, str], deque[tuple[float, bool]]] = {}

    def add(self, predicted: MigrationCost, actual: MigrationResult, profile: str = "") -> None:
        if not actual.succeeded:
            return
        values = {"total_time_ms": actual.total_time_ms, "downtime_ms": actual.downtime_ms,
                  "transferred_mib": actual.transferred_mib}
        technique, model = str(predicted.technique), f"{predicted.model.name} {predicted.model.version}"
        with self._lock:
            for quantity in QUANTITIES:
                measured = values[quantity]
                if measured is None or measured <= 0:  # not measured
                    continue
                estimate = getattr(predicted, quantity)
                error = abs(estimate.median - measured) / measured
                inside = estimate.low <= measured <= estimate.high
                key = (technique, quantity, model, profile)
                self._seen.setdefault(key, deque(maxlen=self._window)).append((error, inside))

    def summary(self) -> list[RunningError]:
        with self._lock:
            items = {key: list(values) for key, values in self._seen.items()}
        out = []
        for (technique, quantity, model, profile), values in sorted(items.items()):
            errors = [e for e, _ in values]
            ape = median(errors)
            out.append(RunningError(technique, quantity, len(values), ape, sum(i for _, i in values) / len(values),
                                    len(values) >= self._min_n and ape > self._drift, model, profile))
        return out
