"""Will a migration finish within its deadline and allowed downtime? The learned probability, bounded by the
physics' hard guards.

The guards (advisor.physics.guards) are physics, not a fit: a guest that dirties at least as fast as the link
sends over a working set beyond the downtime budget never converges, nor does a pre-copy whose deadline is
shorter than one pass over memory; a measured working set within the budget converges after the first pass.
Where one decides, the probability is 0 or 1, whatever the classifier says (`guards` says which, and
`advisor.physics.apply_guards` applies it; `convergence_note` says so in the notes).

The learned probability (a LightGBM classifier trained on the lab's migrations, which end either completed or
aborted at their deadline, and calibrated on held-out groups) reads dimensionless features: rho, the working set
over the budget, the deadline over one pass's time, the analytic model's verdict. It is monotone: more dirty rate
or working set never raises it, more deadline or allowed downtime never lowers it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from advisor.domain.model import MigrationInputs, Technique
from advisor.ml.cost_features import FEATURE_NAMES, TECHNIQUES, FeatureSet, FloatArray, IntArray
from advisor.physics import DEFAULT_CONSTANTS, AnalyticConstants, Guard, first_pass_mib, one_pass_ms
from advisor.physics.guards import taken_dirty_rate, verdicts

# The physics (advisor.ml.profile_serving) answers "converges" for a pre-copy only when it is at least this likely
# to end within its deadline, its time taken as log-normal through its served interval. That probability is not
# calibrated on outcomes (the learned classifier's is: cost.CONVERGE_THRESHOLD), and a migration aborted at its
# deadline costs its whole time for nothing. On the lab's pre-copies with a deadline (`python -m training.few_shot
# --ks 0,10 --draws 10`, 2026-12-06), the median inside the deadline (0.5) foresaw 54% of those that never
# converged with 3% false alarms uncalibrated, 56% and 4% calibrated on 10 of them; 0.8 foresees 73% and 76% with
# 5%; 0.9 79% with 9%; 0.95 82% with 15%.
CONVERGE_CONFIDENCE: Final = 0.8

# The horizon taken for "by itself" when no deadline is given.
NO_DEADLINE_MS: Final = 600_000.0

# (name, monotone direction of the probability of converging)
CONVERGENCE_FEATURES: Final[tuple[tuple[str, int], ...]] = (
    ("technique", 0),
    ("profile", 0),
    ("dirty_ratio", -1),
    ("log_wss_over_budget", -1),
    ("log1p_working_set_mib", -1),
    ("log_deadline_over_one_pass", 1),
    ("log_max_downtime_ms", 1),
    ("analytic_not_converged", -1),
)
CONVERGENCE_FEATURE_NAMES: Final[tuple[str, ...]] = tuple(n for n, _ in CONVERGENCE_FEATURES)

_POSTCOPY = TECHNIQUES.index(Technique.POSTCOPY)
# The classifier's one feature the feature set has not, and where each of the others is in the set's matrix (the
# derived one's place taken by the first column, overwritten).
_DEADLINE_OVER_ONE_PASS = CONVERGENCE_FEATURE_NAMES.index("log_deadline_over_one_pass")
_FROM_FEATURES = np.array([0 if k == _DEADLINE_OVER_ONE_PASS else FEATURE_NAMES.index(name)
                           for k, name in enumerate(CONVERGENCE_FEATURE_NAMES)], dtype=np.intp)


def _usable(fs: FeatureSet) -> FloatArray:
    return np.asarray(np.exp(np.minimum(fs.column("log_bandwidth_mib_s"), fs.column("log_max_bandwidth_mib_s"))))


def guards(fs: FeatureSet, deadline_ms: FloatArray, c: AnalyticConstants = DEFAULT_CONSTANTS) -> IntArray:
    """The physics guard that decides each row (advisor.physics.Guard codes; NONE where the model decides): every
    guard, as training labels, evaluation and serving all apply them."""
    return verdicts(fs.technique_code, np.exp(fs.column("log_first_pass_mib")), _usable(fs),
                    np.expm1(fs.column("log1p_dirty_rate_mib_s")), np.expm1(fs.column("log1p_working_set_mib")),
                    np.exp(fs.column("log_max_downtime_ms")), deadline_ms, c, fs.dirty_rate_known)


def convergence_matrix(fs: FeatureSet, deadline_ms: FloatArray) -> FloatArray:
    """The classifier's features (CONVERGENCE_FEATURE_NAMES order); a deadline of 0 is NO_DEADLINE_MS."""
    one_pass_ms = np.exp(fs.offsets("total_time_ms"))
    deadline = np.where(deadline_ms > 0, deadline_ms, NO_DEADLINE_MS)
    x = fs.matrix[:, _FROM_FEATURES]  # one copy of the columns the set has; the derived one filled after
    x[:, _DEADLINE_OVER_ONE_PASS] = np.log(deadline / one_pass_ms)
    return x


def monotone_constraints() -> list[int]:
    return [d for _, d in CONVERGENCE_FEATURES]


@dataclass(frozen=True)
class Calibration:
    """A monotone map from the classifier's raw probability to a calibrated one (isotonic, from held-out
    groups): piecewise linear through (raw, calibrated) points."""

    raw: tuple[float, ...]
    calibrated: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.raw) != len(self.calibrated):
            raise ValueError(f"calibration: {len(self.raw)} raw points for {len(self.calibrated)} calibrated ones")
        if any(b < a for a, b in zip(self.raw, self.raw[1:], strict=False)) or any(
                not 0.0 <= p <= 1.0 for p in (*self.raw, *self.calibrated)):
            raise ValueError("calibration: points must be probabilities, raw ones in increasing order")

    @functools.cached_property
    def _points(self) -> tuple[FloatArray, FloatArray]:
        """The points as arrays, made once (a served question calibrates ten rows)."""
        return np.array(self.raw), np.array(self.calibrated)

    def apply(self, p: FloatArray) -> FloatArray:
        if not self.raw:
            return p
        return np.asarray(np.interp(p, *self._points), dtype=np.float64)


class ConvergenceModel:
    """The probability that a migration finishes within its deadline and allowed downtime, per row."""

    def __init__(self, booster: Any, calibration: Calibration) -> None:
        expected = len(CONVERGENCE_FEATURE_NAMES)
        if booster.num_feature() != expected:
            raise ValueError(f"the convergence model reads {booster.num_feature()} features, the schema {expected}")
        self._booster = booster
        self._calibration = calibration

    def learned(self, fs: FeatureSet, deadline_ms: FloatArray) -> FloatArray:
        """The classifier's calibrated P(converges), before the guards; 1 for post-copy (it always ends)."""
        x = convergence_matrix(fs, deadline_ms)
        precopy = fs.technique_code != _POSTCOPY
        raw = np.zeros(len(precopy))  # post-copy's rows not asked of the classifier: 1 whatever it says
        if precopy.any():
            raw[precopy] = self._booster.predict(x[precopy])
        p = np.clip(self._calibration.apply(raw), 0.0, 1.0)
        return np.asarray(np.where(precopy, p, 1.0), dtype=np.float64)


def guard_note(technique: Technique, dirty_mib_s: float, seen_mib: float, budget_mib: float,
               working_set_mib: float | None = None) -> str:
    """KEEPS_UP's note; `seen_mib` is the larger of the measured working set and what the guest dirties in 1 s."""
    if working_set_mib is not None and working_set_mib >= seen_mib:
        over = f"over a working set of {seen_mib:.1f} MiB"
    else:
        measured = ("its working set is not measured" if working_set_mib is None else
                    f"its working set measured {working_set_mib:.1f} MiB")
        over = f"over at least {seen_mib:.1f} MiB (what it dirties in 1 s; {measured})"
    return (f"{technique} cannot converge: the guest dirties {dirty_mib_s:.1f} MiB/s, at least what the link sends, "
            f"{over}, more than the {budget_mib:.1f} MiB that fit the allowed downtime")


def pause_note(technique: Technique, converges: bool, downtime_ms: float, allowed_ms: float) -> str:
    """What a converging pre-copy whose predicted pause is above the allowed downtime means ("" otherwise): both
    predictions stand, and they are not a contradiction."""
    if not (technique.is_precopy and converges and downtime_ms > allowed_ms):
        return ""
    return (f"converges, yet its pause is predicted at {downtime_ms:.0f} ms, above the {allowed_ms:.0f} ms allowed: "
            "QEMU stops the guest once what is left fits the allowed downtime at the speed it measured, and the "
            "pause outlasts that estimate (it is what such migrations took)")


def _or_nan(value: float | None) -> float:
    return math.nan if value is None else value


def convergence_note(guard: Guard, inputs: MigrationInputs, technique: Technique, learned: float,
                     probability: float, sent_mib: float | None = None) -> str:
    """What the notes say about convergence: the probability, or the guard that decided it and what the learned
    model had said when the guard overrode it. `sent_mib` is what the guard judged the first pass to send
    (a learned model's features: a schema before v7 never read resident memory); None: as the physics reads the
    inputs."""
    seen = max(inputs.dirty_rate_mib_s, inputs.working_set_mib or 0.0)
    budget = inputs.usable_bandwidth_mib_s * inputs.max_downtime_ms / 1000
    within = f"within {inputs.deadline_ms / 1000:.0f} s" if inputs.deadline_ms else "by itself"
    if guard is Guard.KEEPS_UP:
        code = np.array([TECHNIQUES.index(technique)])
        taken = float(taken_dirty_rate(code, np.array([inputs.dirty_rate_mib_s]),
                                       np.array([inputs.usable_bandwidth_mib_s]),
                                       np.array([inputs.dirty_rate_known]))[0])
        note = guard_note(technique, taken, max(seen, taken), budget, inputs.working_set_mib)
        if not inputs.dirty_rate_known:
            note += " (the dirty rate is unknown: taken as fast as this technique sends)"
    elif guard is Guard.DEADLINE:
        code = np.array([TECHNIQUES.index(technique)])
        sent = sent_mib if sent_mib is not None else float(first_pass_mib(
            np.array([inputs.memory_mib]), np.array([_or_nan(inputs.memory_configured_mib)]),
            np.array([_or_nan(inputs.nonzero_memory_mib)]), np.array([_or_nan(inputs.resident_memory_mib)]))[0])
        one_pass = float(one_pass_ms(code, np.array([sent]), np.array([inputs.usable_bandwidth_mib_s]))[0])
        verb = "end" if technique is Technique.POSTCOPY else "converge"
        note = (f"{technique} cannot {verb} {within}: one pass over {sent:.0f} MiB at "
                f"{inputs.usable_bandwidth_mib_s:.1f} MiB/s takes {one_pass / 1000:.0f} s")
    elif guard is Guard.FITS:
        note = (f"{technique} converges {within}: a working set of {seen:.1f} MiB fits the {budget:.1f} MiB sent "
                "within the allowed downtime")
    else:
        return f"probability of converging {within}: {probability:.2f}"
    if learned != probability:
        note += f" (a physics guard: the learned model said p {learned:.2f})"
    return note


__all__: Sequence[str] = ["CONVERGENCE_FEATURE_NAMES", "Calibration", "ConvergenceModel", "Guard",
                          "convergence_matrix", "convergence_note", "guard_note", "guards", "pause_note"]
