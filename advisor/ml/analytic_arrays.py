"""The analytic model (advisor.ml.analytic) over arrays of rows: the same rounds in the same order of operations,
so that `tests/unit/ml/test_cost_features.py` can check it against the scalar model row for row. The learned
models' features and the convergence guard are built on it; a CSV of a million rows costs a few array
operations rather than a Python loop per row."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from advisor.domain.model import Technique
from advisor.ml.analytic import DEFAULT_CONSTANTS, AnalyticConstants

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Technique codes of the categorical feature: the position in this tuple. Append only.
TECHNIQUES: tuple[Technique, ...] = (
    Technique.PRECOPY,
    Technique.PRECOPY_AUTOCONVERGE,
    Technique.PRECOPY_XBZRLE,
    Technique.PRECOPY_COMPRESS,
    Technique.POSTCOPY,
)
# QEMU's default allowed downtime, which the SNU data was measured with.
DEFAULT_DOWNTIME_MS = 300.0


@dataclass(frozen=True)
class AnalyticArrays:
    """The analytic model's predictions for many rows."""

    total_time_ms: FloatArray
    downtime_ms: FloatArray
    transferred_mib: FloatArray
    converges: BoolArray
    rounds: IntArray


def analytic_arrays(
    technique_code: IntArray,
    memory_mib: FloatArray,
    dirty_rate_mib_s: FloatArray,
    bandwidth_mib_s: FloatArray,
    max_bandwidth_mib_s: FloatArray,
    max_downtime_ms: FloatArray | float = DEFAULT_DOWNTIME_MS,
    c: AnalyticConstants = DEFAULT_CONSTANTS,
) -> AnalyticArrays:
    """`advisor.ml.analytic` over arrays: same rounds, same order of operations, same results."""
    code = np.asarray(technique_code, dtype=np.int64)
    memory = np.asarray(memory_mib, dtype=np.float64)
    dirty = np.asarray(dirty_rate_mib_s, dtype=np.float64)
    usable = np.minimum(np.asarray(bandwidth_mib_s, dtype=np.float64), np.asarray(max_bandwidth_mib_s, np.float64))
    budget = usable * np.asarray(max_downtime_ms, dtype=np.float64) / 1000.0
    is_compress = code == TECHNIQUES.index(Technique.PRECOPY_COMPRESS)
    is_xbzrle = code == TECHNIQUES.index(Technique.PRECOPY_XBZRLE)
    is_autoconverge = code == TECHNIQUES.index(Technique.PRECOPY_AUTOCONVERGE)
    is_postcopy = code == TECHNIQUES.index(Technique.POSTCOPY)
    ratio_first = np.where(is_compress, c.compression_ratio, 1.0)
    ratio_resend = np.where(is_compress, c.compression_ratio, np.where(is_xbzrle, c.xbzrle_resend_ratio, 1.0))

    n = memory.shape[0]
    to_send = memory.copy()
    wire = np.zeros(n)
    elapsed_s = np.zeros(n)
    throttle = np.zeros(n)
    converges = np.zeros(n, dtype=np.bool_)
    rounds = np.zeros(n, dtype=np.int64)
    active = ~is_postcopy
    for r in range(1, c.max_rounds + 1):
        if not active.any():
            break
        ratio = ratio_first if r == 1 else ratio_resend
        sent = to_send * ratio
        round_s = sent / usable
        wire = np.where(active, wire + sent, wire)
        elapsed_s = np.where(active, elapsed_s + round_s, elapsed_s)
        rounds = np.where(active, r, rounds)
        if r >= 2:
            stepped = np.minimum(
                c.autoconverge_max,
                np.where(throttle == 0, c.autoconverge_initial, throttle + c.autoconverge_increment),
            )
            throttle = np.where(active & is_autoconverge, stepped, throttle)
        dirtied = np.minimum(dirty * (1.0 - throttle) * round_s, memory)
        to_send = np.where(active, dirtied, to_send)
        done = active & (dirtied * ratio_resend <= budget)
        converges |= done
        active = active & ~done
    last = to_send * ratio_resend + c.device_state_mib
    downtime = last / usable * 1000.0 + c.resume_ms
    total = elapsed_s * 1000.0 + downtime
    wire = wire + last

    post_wire = memory * c.postcopy_overhead_ratio + c.device_state_mib
    return AnalyticArrays(
        total_time_ms=np.where(is_postcopy, post_wire / usable * 1000.0, total),
        downtime_ms=np.where(is_postcopy, c.device_state_mib / usable * 1000.0 + c.resume_ms, downtime),
        transferred_mib=np.where(is_postcopy, post_wire, wire),
        converges=converges | is_postcopy,
        rounds=np.where(is_postcopy, 1, rounds),
    )
