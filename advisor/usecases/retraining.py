"""Retraining in the running service, on a schedule or when the prediction error drifts: the stored outcomes go
to the training job (`python -m training.train_cost --outcomes ... --promote`, through the promotion gate), one
run at a time; a version the gate promotes becomes ACTIVE and the models' reloader serves it.

When to retrain is advisor.domain.retraining.retrain_trigger, a pure function; how is a TrainingJob
(advisor.adapters.training_job runs the job as a subprocess)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from advisor.domain.migration import MigrationRecord, Phase
from advisor.domain.retraining import RetrainPolicy, RetrainResult, retrain_trigger
from advisor.metrics import AdvisorMetrics
from advisor.usecases.ports import Clock

log = logging.getLogger("advisor.retraining")


class TrainingJob(Protocol):
    def run(self, outcomes: Sequence[MigrationRecord]) -> RetrainResult: ...


def measured(records: Sequence[MigrationRecord]) -> int:
    """Outcomes that measured something: completed migrations (aborts are censored)."""
    return sum(1 for r in records if r.phase is Phase.SUCCEEDED and r.outcome is not None and r.inputs is not None)


class Retraining:
    """The periodic check: decides, runs the job, logs and exports what came of it."""

    def __init__(self, policy: RetrainPolicy, job: TrainingJob, outcomes: Callable[[float], list[MigrationRecord]],
                 drift: Callable[[], bool], metrics: AdvisorMetrics, clock: Clock,
                 monotonic: Callable[[], float]) -> None:
        """`outcomes(since_s)`: the stored migrations ended since a time; `drift()`: whether any running error
        is beyond the drift threshold now."""
        self._policy = policy
        self._job = job
        self._outcomes = outcomes
        self._drift = drift
        self._metrics = metrics
        self._clock = clock
        self._monotonic = monotonic
        self._last_run_s = clock()
        self._running = threading.Lock()

    def run_if_due(self) -> RetrainResult | None:
        """Start a run if one is due and none is under way; the run's result, None when none was started."""
        if not self._running.acquire(blocking=False):
            return None
        try:
            now = self._clock()
            trigger = retrain_trigger(self._policy, now_s=now, last_run_s=self._last_run_s,
                                      new_outcomes=measured(self._outcomes(self._last_run_s)), drift=self._drift())
            if trigger is None:
                return None
            self._last_run_s = now
            return self._run(trigger)
        finally:
            self._running.release()

    def _run(self, trigger: str) -> RetrainResult:
        records = self._outcomes(0.0)
        log.info("retraining", extra={"trigger": trigger, "outcomes": len(records)})
        started = self._monotonic()
        try:
            result = self._job.run(records)
        except Exception as error:  # a job that cannot even start must not stop the checks
            log.exception("retraining could not run", extra={"trigger": trigger})
            result = RetrainResult("failed", "", f"{type(error).__name__}: {error}", None, 0)
        seconds = self._monotonic() - started
        m = self._metrics
        m.retrains.labels(trigger, result.result).inc()
        m.retrain_seconds.set(seconds)
        m.retrain_finished.set(self._clock())
        level = logging.ERROR if result.result == "failed" else logging.INFO
        log.log(level, "retraining ended", extra={
            "trigger": trigger, "result": result.result, "version": result.version, "reason": result.reason,
            "exit_code": result.exit_code, "outcomes": result.outcomes, "seconds": round(seconds, 1)})
        return result
