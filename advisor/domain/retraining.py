"""When the service retrains its cost model, and what a run gave (advisor.usecases.retraining runs it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetrainPolicy:
    interval_s: float = 0.0  # a run every this many seconds; 0: never on a schedule
    on_drift: bool = False  # a run when the running prediction error drifts (advisor.ml.calibration)...
    drift_min_outcomes: int = 10  # ...and at least this many measured outcomes came since the last run


def retrain_trigger(policy: RetrainPolicy, *, now_s: float, last_run_s: float, new_outcomes: int, drift: bool
                    ) -> str | None:
    """Why to start a run now ("schedule" or "drift"), or None. `last_run_s`: when the last run started (the
    service's start before any); `new_outcomes`: measured outcomes since then. Drift alone never starts runs back
    to back: the error stays high until new outcomes come from the model it promoted, so each run on drift waits
    for that many new ones. (Runs never overlap: Retraining.run_if_due holds a lock while one runs.)"""
    if policy.interval_s > 0 and now_s - last_run_s >= policy.interval_s:
        return "schedule"
    if policy.on_drift and drift and new_outcomes >= policy.drift_min_outcomes:
        return "drift"
    return None


@dataclass(frozen=True)
class RetrainResult:
    result: str  # "promoted", "not promoted" (the gate refused it, or it was no better) or "failed"
    version: str  # the version written ("" when none was)
    reason: str  # the gate's reason, or why the run failed
    exit_code: int | None  # the job's (None: it was not run, or was stopped)
    outcomes: int  # outcome rows given to the job
