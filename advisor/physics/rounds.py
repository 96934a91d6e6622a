"""The analytic model of live migration over arrays of rows (see docs/architecture.md, "Cost", and the field guide,
section 1): the one implementation, used by training and serving (the learned models' features), by plans (the
engine's default costs) and, through both, by the simulator's bridge.

Pre-copy is simulated round by round: round 0 sends all memory, each later round re-sends what the guest dirtied
during the previous one, and the migration stops when what is left fits the allowed downtime at the usable
bandwidth (QEMU's rule). QEMU checks that rule whenever what is pending falls below the budget, not only after a
whole round: where the working set is measured, a row whose whole rounds stop gaining settles as those syncs let
it (`_rounds`); the learned models' features of schema v4 keep the check after whole rounds they were trained on
(`sync_below_budget`). Each pre-copy variant changes one thing:

- auto-converge throttles the vCPUs from the second round on, so the dirty rate falls by the throttle;
- XBZRLE sends re-dirtied pages as deltas, so later rounds carry a fraction of their bytes;
- multi-thread compression shrinks every byte sent.

Post-copy sends each page once after a short stop, so its time tracks memory over bandwidth.

The learned cost model reads these predictions as features and its schema hash covers `AnalyticConstants`
(advisor.ml.cost_features): changing a formula or a constant here changes what the served model sees, and needs a
retrain. tests/unit/physics/test_grid.py holds the figures on a broad grid.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import numpy.typing as npt

from advisor.domain.model import Technique

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Technique codes (the learned models' categorical feature, the engine's technique index): the position in this
# tuple. Append only.
TECHNIQUES: tuple[Technique, ...] = (
    Technique.PRECOPY,
    Technique.PRECOPY_AUTOCONVERGE,
    Technique.PRECOPY_XBZRLE,
    Technique.PRECOPY_COMPRESS,
    Technique.POSTCOPY,
)
_AUTOCONVERGE = TECHNIQUES.index(Technique.PRECOPY_AUTOCONVERGE)
_XBZRLE = TECHNIQUES.index(Technique.PRECOPY_XBZRLE)
_COMPRESS = TECHNIQUES.index(Technique.PRECOPY_COMPRESS)
_POSTCOPY = TECHNIQUES.index(Technique.POSTCOPY)
# QEMU's default allowed downtime, which the SNU data was measured with.
DEFAULT_DOWNTIME_MS = 300.0


@dataclass(frozen=True)
class AnalyticConstants:
    """Physical constants of the model; defaults fit QEMU 2.x-7.x on the SNU measurements."""

    device_state_mib: float = 0.1
    # Time from the stop of the source to the start of the destination beyond sending the last pages.
    resume_ms: float = 1.0
    max_rounds: int = 30
    xbzrle_resend_ratio: float = 0.5
    compression_ratio: float = 0.66
    postcopy_overhead_ratio: float = 1.01
    autoconverge_initial: float = 0.20
    autoconverge_increment: float = 0.10
    autoconverge_max: float = 0.99


DEFAULT_CONSTANTS = AnalyticConstants()


@dataclass(frozen=True)
class AnalyticArrays:
    """The analytic model's predictions for many rows."""

    total_time_ms: FloatArray
    downtime_ms: FloatArray
    transferred_mib: FloatArray
    converges: BoolArray
    rounds: IntArray

    def take(self, rows: BoolArray | IntArray) -> AnalyticArrays:
        return AnalyticArrays(self.total_time_ms[rows], self.downtime_ms[rows], self.transferred_mib[rows],
                              self.converges[rows], self.rounds[rows])


def send_ratios(code: IntArray, c: AnalyticConstants = DEFAULT_CONSTANTS) -> tuple[FloatArray, FloatArray]:
    """(first pass, later rounds): the share of a round's memory that crosses the link, per row."""
    is_compress = code == TECHNIQUES.index(Technique.PRECOPY_COMPRESS)
    is_xbzrle = code == TECHNIQUES.index(Technique.PRECOPY_XBZRLE)
    first = np.where(is_compress, c.compression_ratio, 1.0)
    resend = np.where(is_compress, c.compression_ratio, np.where(is_xbzrle, c.xbzrle_resend_ratio, 1.0))
    return first, resend


def analytic_arrays(
    technique_code: IntArray,
    memory_mib: FloatArray,
    dirty_rate_mib_s: FloatArray,
    bandwidth_mib_s: FloatArray,
    max_bandwidth_mib_s: FloatArray,
    max_downtime_ms: FloatArray | float = DEFAULT_DOWNTIME_MS,
    c: AnalyticConstants = DEFAULT_CONSTANTS,
) -> AnalyticArrays:
    """Every row's migration (see the module); the usable bandwidth is the lower of the link and the cap. The
    first pass sends `memory_mib`, and a round re-sends what the guest dirtied during the previous one, at most
    all of memory."""
    memory = np.asarray(memory_mib, dtype=np.float64)
    usable = np.minimum(np.asarray(bandwidth_mib_s, dtype=np.float64), np.asarray(max_bandwidth_mib_s, np.float64))
    return simulate(technique_code, memory, memory, dirty_rate_mib_s, usable, max_downtime_ms, c)


def simulate(
    technique_code: IntArray,
    first_pass_mib: FloatArray,
    rewritable_mib: FloatArray,
    dirty_rate_mib_s: FloatArray,
    usable_mib_s: FloatArray,
    max_downtime_ms: FloatArray | float,
    c: AnalyticConstants = DEFAULT_CONSTANTS,
    sync_below_budget: BoolArray | bool = False,
) -> AnalyticArrays:
    """The rounds of every row: the first pass sends `first_pass_mib` (post-copy's only pass), each later round
    re-sends what the guest dirtied during the previous one, at most `rewritable_mib`. Where `sync_below_budget`
    (rows whose `rewritable_mib` is a measured working set), a row that a whole round no longer brings closer to
    its budget settles as QEMU's syncs below the budget let it (`_rounds`)."""
    code = np.asarray(technique_code, dtype=np.int64)
    first_pass = np.asarray(first_pass_mib, dtype=np.float64)
    n = first_pass.shape[0]

    def rows(a: npt.ArrayLike, dtype: type = np.float64) -> npt.NDArray[Any]:
        column: npt.NDArray[Any] = np.asarray(a, dtype=dtype)
        return np.ascontiguousarray(column if column.shape == (n,) else np.broadcast_to(column, (n,)))

    total, downtime, wire = np.empty(n), np.empty(n), np.empty(n)
    converges = np.zeros(n, dtype=np.bool_)
    rounds = np.zeros(n, dtype=np.int64)
    _simulate(rows(code, np.int64), rows(first_pass), rows(rewritable_mib), rows(dirty_rate_mib_s), rows(usable_mib_s),
              rows(max_downtime_ms), rows(sync_below_budget, np.bool_), c.max_rounds, c.autoconverge_initial,
              c.autoconverge_increment, c.autoconverge_max, c.compression_ratio, c.xbzrle_resend_ratio,
              c.device_state_mib, c.resume_ms, c.postcopy_overhead_ratio, total, downtime, wire, converges, rounds)
    return AnalyticArrays(total_time_ms=total, downtime_ms=downtime, transferred_mib=wire, converges=converges,
                          rounds=rounds)


@numba.njit(cache=True, nogil=True)
def row_send_ratios(code: int, compression_ratio: float,
                    xbzrle_resend_ratio: float) -> tuple[float, float]:  # pragma: no cover - compiled
    """`send_ratios` of one row, for the compiled loops: (first pass, later rounds)."""
    if code == _COMPRESS:
        return compression_ratio, compression_ratio
    return 1.0, xbzrle_resend_ratio if code == _XBZRLE else 1.0


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _simulate(code: Any, first_pass: Any, ceiling: Any, dirty: Any, usable: Any, downtime_ms: Any, sync: Any,
              max_rounds: int, throttle_initial: float, throttle_increment: float, throttle_max: float,
              compression_ratio: float, xbzrle_resend_ratio: float, device_state_mib: float, resume_ms: float,
              postcopy_overhead_ratio: float, total: Any, downtime: Any, wire: Any, converges: Any,
              rounds: Any) -> None:  # pragma: no cover - compiled
    """`simulate` row by row, around `_rounds`: the send ratios (`send_ratios`), the budget, the stop's last round
    and post-copy's one pass, with the same operations in the same order as over arrays (a division by a zero
    bandwidth gives inf or NaN, as NumPy's)."""
    n = code.shape[0]
    ratio_first, ratio_resend, budget = np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        ratio_first[i], ratio_resend[i] = row_send_ratios(code[i], compression_ratio, xbzrle_resend_ratio)
        budget[i] = usable[i] * downtime_ms[i] / 1000.0
    to_send, elapsed_s = first_pass.copy(), np.zeros(n)
    wire[:] = 0.0
    _rounds(code, ceiling, dirty, usable, budget, ratio_first, ratio_resend, sync, max_rounds, throttle_initial,
            throttle_increment, throttle_max, to_send, wire, elapsed_s, converges, rounds)
    for i in range(n):
        if code[i] == _POSTCOPY:
            post_wire = first_pass[i] * postcopy_overhead_ratio + device_state_mib
            total[i] = post_wire / usable[i] * 1000.0
            downtime[i] = device_state_mib / usable[i] * 1000.0 + resume_ms
            wire[i] = post_wire
            rounds[i] = 1
            converges[i] = True
        else:
            last = to_send[i] * ratio_resend[i] + device_state_mib
            downtime[i] = last / usable[i] * 1000.0 + resume_ms
            total[i] = elapsed_s[i] * 1000.0 + downtime[i]
            wire[i] += last


@numba.njit(cache=True, nogil=True)
def _minimum(a: float, b: float) -> float:  # pragma: no cover - compiled
    """np.minimum of two floats: NaN when either is."""
    if math.isnan(a) or math.isnan(b):
        return math.nan
    return a if a <= b else b


@numba.njit(cache=True, nogil=True)
def _rounds(code: Any, ceiling: Any, dirty: Any, usable: Any, budget: Any, ratio_first: Any, ratio_resend: Any,
            sync: Any, max_rounds: int, throttle_initial: float, throttle_increment: float, throttle_max: float,
            to_send: Any, wire: Any, elapsed_s: Any, converges: Any,
            rounds: Any) -> None:  # pragma: no cover - compiled
    """Each pre-copy row's rounds, one row at a time (the same operations, in the same order, as over arrays: a
    loop compiled once per machine beside this module, so that the 10 rows of one question do not pay for dozens
    of array operations per round). `to_send` holds the first pass on entry; `to_send`, `wire`, `elapsed_s`,
    `converges` and `rounds` are written for every row that is not post-copy.

    QEMU's stop rule between rounds, for a row of `sync` that stalled (a whole round left at least as much to send
    as it sent, or the last round): QEMU syncs the dirty bitmap whenever what is pending falls below the budget,
    not only after a whole round (migration_iteration_run: below the threshold the pending estimate is made exact,
    which syncs). A guest rewriting a working set W at rate r (after the throttle) while the link clears L of it
    per second (its re-send ratio applied) then leaves a pending floor of W x (1 - L / r), where new writes hit
    clean pages as fast as the link cleans them: a floor below the budget is reached (the pending part decays
    toward it as exp(-r t / W)), and the stop sends the budget's worth. A floor at or above the budget leaves the
    row to its rounds."""
    for i in range(code.shape[0]):
        if code[i] == _POSTCOPY:
            continue
        left, sent_mib, seconds, throttle = to_send[i], 0.0, 0.0, 0.0
        for r in range(1, max_rounds + 1):
            sent = left * (ratio_first[i] if r == 1 else ratio_resend[i])
            round_s = sent / usable[i]
            sent_mib += sent
            seconds += round_s
            if r >= 2 and code[i] == _AUTOCONVERGE:
                throttle = _minimum(throttle_max, throttle_initial if throttle == 0 else throttle + throttle_increment)
            pending = left
            left = _minimum(dirty[i] * (1.0 - throttle) * round_s, ceiling[i])
            done = left * ratio_resend[i] <= budget[i]
            if sync[i] and not done and (left >= pending or r == max_rounds):
                rate = dirty[i] * (1.0 - throttle)
                row_budget = budget[i] / ratio_resend[i]
                if rate > 0:
                    floor = ceiling[i] * (1.0 - usable[i] / ratio_resend[i] / rate)
                    if floor < row_budget and left > row_budget:
                        settle_s = ceiling[i] / rate * math.log1p((left - row_budget) / (row_budget - floor))
                        seconds += settle_s
                        sent_mib += usable[i] * settle_s
                        left = row_budget
                        done = True
            rounds[i] = r
            if done:
                converges[i] = True
                break
        to_send[i], wire[i], elapsed_s[i] = left, sent_mib, seconds


def one_pass_ms(technique_code: IntArray, memory_mib: FloatArray, usable_mib_s: FloatArray,
                c: AnalyticConstants = DEFAULT_CONSTANTS) -> FloatArray:
    """How long the first pass over memory takes (the model's first round): no pre-copy ends sooner."""
    first, _ = send_ratios(np.asarray(technique_code, dtype=np.int64), c)
    ms: FloatArray = np.asarray(memory_mib, dtype=np.float64) * first / np.asarray(usable_mib_s, np.float64) * 1000.0
    return ms
