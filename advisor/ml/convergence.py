"""Will a migration finish within its deadline and allowed downtime? The physics' hard limit, and the learned
probability.

The guard (`cannot_converge`) is physics, not a fit: a pre-copy without throttling ends only when what the guest
dirtied during a round fits the downtime budget (usable bandwidth x allowed downtime). If the guest dirties at
least as fast as the link sends (its 1 s dirty rate, a lower bound of how fast it writes, is at or above the
link's effective rate) while its working set is more than GUARD_BUDGETS budgets, every round re-sends at least a
working set and none ever fits: the advisor never answers "converges" there. XBZRLE sends re-dirtied pages as
deltas and compression shrinks them, so their effective rates are higher. Auto-converge throttles the guest
until it fits and post-copy always ends, so neither is ever ruled out here (the learned probability still
weighs whether auto-converge makes the deadline).

The learned probability (a LightGBM classifier trained on the lab's migrations, which end either completed or
aborted at their deadline, and calibrated on held-out groups) reads dimensionless features: rho, the working set
over the budget, the deadline over one pass's time, the analytic model's verdict. It is monotone: more dirty rate
or working set never raises it, more deadline or allowed downtime never lowers it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from advisor.domain.model import Technique
from advisor.ml.cost_features import TECHNIQUES, FeatureSet, FloatArray, IntArray
from advisor.physics import DEFAULT_CONSTANTS, AnalyticConstants

# A working set beyond this many budgets, written at least as fast as the link sends, never fits. Physics says 1;
# the margin absorbs page sampling's noise (a 128 MiB guest's 1 s reading comes in 2 MiB/s steps).
GUARD_BUDGETS: Final = 2.0
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

_PRECOPY = TECHNIQUES.index(Technique.PRECOPY)
_XBZRLE = TECHNIQUES.index(Technique.PRECOPY_XBZRLE)
_COMPRESS = TECHNIQUES.index(Technique.PRECOPY_COMPRESS)
_POSTCOPY = TECHNIQUES.index(Technique.POSTCOPY)
_AUTOCONVERGE = TECHNIQUES.index(Technique.PRECOPY_AUTOCONVERGE)


def effective_rate(code: IntArray, usable_mib_s: FloatArray, c: AnalyticConstants = DEFAULT_CONSTANTS) -> FloatArray:
    """How fast re-dirtied memory crosses the link: faster for XBZRLE deltas and compressed pages."""
    ratio = np.where(code == _XBZRLE, c.xbzrle_resend_ratio, np.where(code == _COMPRESS, c.compression_ratio, 1.0))
    return np.asarray(usable_mib_s / ratio, dtype=np.float64)


def cannot_converge(fs: FeatureSet, c: AnalyticConstants = DEFAULT_CONSTANTS) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Rows whose pre-copy (plain, XBZRLE or compressed) can never fit its downtime budget (see the module)."""
    code = fs.column("technique").astype(np.int64)
    dirty = np.expm1(fs.column("log1p_dirty_rate_mib_s"))
    usable = np.exp(np.minimum(fs.column("log_bandwidth_mib_s"), fs.column("log_max_bandwidth_mib_s")))
    rate = effective_rate(code, usable, c)
    over_budget = fs.column("log_wss_over_budget") > math.log(GUARD_BUDGETS)
    guarded = (code == _PRECOPY) | (code == _XBZRLE) | (code == _COMPRESS)
    # `dirty >= rate`, tolerant of the log/exp round trip: an unknown dirty rate is set to exactly the usable
    # bandwidth, the designed "never converges" case, and must not miss by a rounding error.
    return np.asarray(guarded & (dirty >= rate * (1 - 1e-9)) & over_budget)


def convergence_matrix(fs: FeatureSet, deadline_ms: FloatArray) -> FloatArray:
    """The classifier's features (CONVERGENCE_FEATURE_NAMES order); a deadline of 0 is NO_DEADLINE_MS."""
    one_pass_ms = np.exp(fs.offset("total_time_ms"))
    deadline = np.where(deadline_ms > 0, deadline_ms, NO_DEADLINE_MS)
    derived = {"log_deadline_over_one_pass": np.log(deadline / one_pass_ms)}
    return np.column_stack([derived[n] if n in derived else fs.column(n) for n in CONVERGENCE_FEATURE_NAMES])


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

    def apply(self, p: FloatArray) -> FloatArray:
        if not self.raw:
            return p
        return np.asarray(np.interp(p, np.array(self.raw), np.array(self.calibrated)), dtype=np.float64)


class ConvergenceModel:
    """The probability that a migration finishes within its deadline and allowed downtime, per row."""

    def __init__(self, booster: Any, calibration: Calibration) -> None:
        expected = len(CONVERGENCE_FEATURE_NAMES)
        if booster.num_feature() != expected:
            raise ValueError(f"the convergence model reads {booster.num_feature()} features, the schema {expected}")
        self._booster = booster
        self._calibration = calibration

    def probability(self, fs: FeatureSet, deadline_ms: FloatArray) -> FloatArray:
        """P(converges); 1 for post-copy (it always ends), 0 where the physics rules it out."""
        x = convergence_matrix(fs, deadline_ms)
        raw = np.asarray(self._booster.predict(x, num_threads=1 if len(x) < 2_000 else 0), dtype=np.float64)
        p = np.clip(self._calibration.apply(raw), 0.0, 1.0)
        code = fs.column("technique").astype(np.int64)
        p = np.where(code == _POSTCOPY, 1.0, p)
        return np.asarray(np.where(cannot_converge(fs), 0.0, p), dtype=np.float64)


def guard_note(technique: Technique, dirty_mib_s: float, seen_mib: float, budget_mib: float) -> str:
    return (f"{technique} cannot converge: the guest dirties {dirty_mib_s:.1f} MiB/s, at least what the link sends, "
            f"over a working set of {seen_mib:.1f} MiB, more than the {budget_mib:.1f} MiB that fit the allowed "
            "downtime")


__all__: Sequence[str] = ["CONVERGENCE_FEATURE_NAMES", "Calibration", "ConvergenceModel", "cannot_converge",
                          "convergence_matrix", "guard_note"]
