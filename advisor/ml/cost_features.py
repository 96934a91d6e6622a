"""The feature schema of the learned cost models, shared by training and serving.

Features are built from what production can observe before a migration (memory, dirty rate, bandwidth, the
migration speed cap, the technique) plus the analytic model's own predictions, so a learner only has to learn
the physics' error. Everything here is pure and vectorised over rows (numpy), so batch prediction of a large CSV
costs a few array operations rather than a Python loop per row.

The analytic model is re-implemented here over arrays; `tests/test_features.py` checks it against
`advisor.ml.analytic.analytic_point` row for row. Its features are computed at QEMU's default allowed downtime
(300 ms), the setting the training data was measured with; `converges` for a request's own limit is computed
separately with `analytic_arrays`.

The schema hash covers the feature names and order, the technique codes, the units, the analytic constants and
which features each target's model uses: change any of them and a stored artifact is refused.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from advisor.domain.model import MigrationInputs, Technique
from advisor.features.inputs import INPUT_COLUMNS, InputTable
from advisor.ml.analytic import DEFAULT_CONSTANTS, AnalyticConstants

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

SCHEMA_VERSION: Final = 2
# The allowed downtime the SNU data was measured with (QEMU's default); the analytic features assume it.
FEATURE_MAX_DOWNTIME_MS: Final = 300.0

# Technique codes of the categorical feature: the position in this tuple. Append only.
TECHNIQUES: Final[tuple[Technique, ...]] = (
    Technique.PRECOPY,
    Technique.PRECOPY_AUTOCONVERGE,
    Technique.PRECOPY_XBZRLE,
    Technique.PRECOPY_COMPRESS,
    Technique.POSTCOPY,
)
TECHNIQUE_CODE: Final[Mapping[str, int]] = {str(t): i for i, t in enumerate(TECHNIQUES)}

# (name, monotone direction of the migration's total time and data as the dirty rate rises / bandwidth falls)
# Every feature that moves with the dirty rate or the bandwidth has a direction, so constraining the time and data
# models to these directions guarantees: more dirty rate never predicts a faster migration, more bandwidth never a
# slower one. The analytic downtime is a sawtooth in the dirty rate (one more round resets it), so the time and
# data models do not use it.
FEATURES: Final[tuple[tuple[str, int], ...]] = (
    ("technique", 0),  # categorical, code from TECHNIQUES
    ("log_memory_mib", 0),
    ("log1p_dirty_rate_mib_s", 1),
    ("log_bandwidth_mib_s", -1),
    ("log_max_bandwidth_mib_s", -1),
    ("dirty_ratio", 1),  # dirty rate / usable bandwidth
    ("log_analytic_total_time_ms", 1),
    ("log_analytic_transferred_mib", 1),
    ("analytic_rounds", 1),
    ("analytic_not_converged", 1),
    ("log_analytic_downtime_ms", 0),
)
FEATURE_NAMES: Final[tuple[str, ...]] = tuple(name for name, _ in FEATURES)
CATEGORICAL_FEATURES: Final[tuple[str, ...]] = ("technique",)

TARGETS: Final[tuple[str, ...]] = ("total_time_ms", "downtime_ms", "transferred_mib")
# Which features each target's model reads (in schema order) and whether it is monotone-constrained.
TARGET_FEATURES: Final[Mapping[str, tuple[str, ...]]] = {
    "total_time_ms": tuple(n for n in FEATURE_NAMES if n != "log_analytic_downtime_ms"),
    "transferred_mib": tuple(n for n in FEATURE_NAMES if n != "log_analytic_downtime_ms"),
    "downtime_ms": FEATURE_NAMES,
}
MONOTONE_TARGETS: Final[frozenset[str]] = frozenset({"total_time_ms", "transferred_mib"})
# What each target's model predicts on top of (in log space): the model learns log(actual / offset).
# Time and data are learned relative to one pass over memory (M / usable bandwidth, M), which rises with the dirty
# rate and falls with bandwidth by the same monotone rules as the features, so the constrained models stay
# monotone end to end and scale with memory beyond the training range. Downtime is learned relative to the
# analytic downtime (the physics' own error), unconstrained.
#
# Multi-thread compression is the exception: its wire rate equals the usable bandwidth (within 0.2% in the SNU
# data), but the share of memory it sends rises with the bandwidth (the compression threads fall behind), so its
# time falls more slowly than 1/bandwidth. Its offsets use the bandwidth to the power COMPRESS_BANDWIDTH_EXPONENT
# (< 1, still falling, so the constrained time model stays monotone in bandwidth) around a reference bandwidth;
# its data offset rises with bandwidth by the rest (data = time x bandwidth). Its data model is therefore not
# monotone in bandwidth; its time model is, and all data models are monotone in the dirty rate.
COMPRESS_BANDWIDTH_EXPONENT: Final = 0.5
COMPRESS_REFERENCE_BANDWIDTH_MIB_S: Final = 25.0
TARGET_OFFSETS: Final[Mapping[str, str]] = {
    "total_time_ms": "log(memory_mib / usable_bandwidth_mib_s * 1000); precopy_compress: "
    "log(memory_mib / (usable_bandwidth_mib_s^a * ref^(1-a)) * 1000)",
    "transferred_mib": "log(memory_mib); precopy_compress: log(memory_mib * (usable_bandwidth_mib_s / ref)^(1-a))",
    "downtime_ms": "log(analytic_downtime_ms)",
}


def monotone_constraints(target: str) -> list[int]:
    """LightGBM's `monotone_constraints` for a target's feature subset (all zero for unconstrained targets)."""
    direction = dict(FEATURES)
    return [direction[n] if target in MONOTONE_TARGETS else 0 for n in TARGET_FEATURES[target]]


def target_columns(target: str) -> list[int]:
    """Positions of a target's features in the full feature matrix."""
    return [FEATURE_NAMES.index(n) for n in TARGET_FEATURES[target]]


def schema_document(constants: AnalyticConstants = DEFAULT_CONSTANTS) -> dict[str, object]:
    return {
        "schema_version": SCHEMA_VERSION,
        "features": [list(f) for f in FEATURES],
        "categorical": list(CATEGORICAL_FEATURES),
        "techniques": [str(t) for t in TECHNIQUES],
        "inputs": list(INPUT_COLUMNS),
        "units": {
            "memory": "MiB",
            "dirty_rate": "MiB/s (from 4 KiB pages/s)",
            "bandwidth": "MiB/s (from Mbit/s)",
            "max_bandwidth": "MiB/s",
        },
        "feature_max_downtime_ms": FEATURE_MAX_DOWNTIME_MS,
        "analytic_constants": dataclasses.asdict(constants),
        "targets": {t: list(TARGET_FEATURES[t]) for t in TARGETS},
        "monotone_targets": sorted(MONOTONE_TARGETS),
        "target_offsets": dict(TARGET_OFFSETS),
        "compress_offset": {
            "a": COMPRESS_BANDWIDTH_EXPONENT, "ref_mib_s": COMPRESS_REFERENCE_BANDWIDTH_MIB_S,
        },
    }


def schema_hash(constants: AnalyticConstants = DEFAULT_CONSTANTS) -> str:
    """sha256 of the canonical JSON of the schema: stable across processes and platforms."""
    text = json.dumps(schema_document(constants), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


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
    max_downtime_ms: FloatArray | float = FEATURE_MAX_DOWNTIME_MS,
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


@dataclass(frozen=True)
class FeatureSet:
    """The feature matrix (columns in FEATURE_NAMES order) and the analytic predictions it was built from."""

    matrix: FloatArray
    analytic: AnalyticArrays

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.matrix, columns=list(FEATURE_NAMES))

    def subset(self, mask: BoolArray) -> FeatureSet:
        a = self.analytic
        return FeatureSet(
            self.matrix[mask],
            AnalyticArrays(
                a.total_time_ms[mask], a.downtime_ms[mask], a.transferred_mib[mask], a.converges[mask], a.rounds[mask]
            ),
        )

    def columns(self, target: str) -> FloatArray:
        """The feature matrix of a target's model."""
        return self.matrix[:, target_columns(target)]

    def offset(self, target: str) -> FloatArray:
        """TARGET_OFFSETS[target] for every row."""
        m = self.matrix
        if target in ("total_time_ms", "transferred_mib"):
            log_usable = np.minimum(
                m[:, FEATURE_NAMES.index("log_bandwidth_mib_s")], m[:, FEATURE_NAMES.index("log_max_bandwidth_mib_s")]
            )
            log_memory = m[:, FEATURE_NAMES.index("log_memory_mib")]
            compress = m[:, 0] == float(TECHNIQUES.index(Technique.PRECOPY_COMPRESS))
            # exponent of the usable bandwidth in the time offset: 1 (one pass), a for compression
            a = np.where(compress, COMPRESS_BANDWIDTH_EXPONENT, 1.0)
            log_ref = math.log(COMPRESS_REFERENCE_BANDWIDTH_MIB_S)
            if target == "total_time_ms":
                one_pass: FloatArray = log_memory - a * log_usable - (1.0 - a) * log_ref + math.log(1000.0)
                return one_pass
            data: FloatArray = log_memory + (1.0 - a) * (log_usable - log_ref)
            return data
        if target == "downtime_ms":
            return m[:, FEATURE_NAMES.index("log_analytic_downtime_ms")].copy()
        raise KeyError(target)


def build_cost_features(table: InputTable, constants: AnalyticConstants = DEFAULT_CONSTANTS) -> FeatureSet:
    """The feature matrix of an InputTable (validated beforehand). The analytic features assume the allowed
    downtime the training data was measured with (FEATURE_MAX_DOWNTIME_MS), whatever the rows ask."""
    code = technique_codes([str(t) for t in table.techniques])
    memory, dirty = table.memory_mib, table.dirty_rate_mib_s
    bandwidth, cap = table.bandwidth_mib_s, table.max_bandwidth_mib_s
    a = analytic_arrays(code, memory, dirty, bandwidth, cap, FEATURE_MAX_DOWNTIME_MS, constants)
    columns = {
        "technique": code.astype(np.float64),
        "log_memory_mib": np.log(memory),
        "log1p_dirty_rate_mib_s": np.log1p(dirty),
        "log_bandwidth_mib_s": np.log(bandwidth),
        "log_max_bandwidth_mib_s": np.log(cap),
        "dirty_ratio": dirty / np.minimum(bandwidth, cap),
        "log_analytic_total_time_ms": np.log(a.total_time_ms),
        "log_analytic_transferred_mib": np.log(a.transferred_mib),
        "analytic_rounds": a.rounds.astype(np.float64),
        "analytic_not_converged": (~a.converges).astype(np.float64),
        "log_analytic_downtime_ms": np.log(a.downtime_ms),
    }
    matrix = np.column_stack([columns[name] for name in FEATURE_NAMES])
    return FeatureSet(matrix=matrix, analytic=a)


def technique_codes(techniques: Sequence[str] | pd.Series) -> IntArray:
    """Codes of technique names; raises KeyError naming the first unknown one."""
    return np.array([TECHNIQUE_CODE[str(t)] for t in techniques], dtype=np.int64)


def build_features(frame: pd.DataFrame, constants: AnalyticConstants = DEFAULT_CONSTANTS) -> FeatureSet:
    """Features of a table of migrations in the columns and units of the shared data (training)."""
    return build_cost_features(InputTable.from_frame(frame), constants)


def build_features_from_inputs(
    rows: Sequence[tuple[MigrationInputs, Technique]], constants: AnalyticConstants = DEFAULT_CONSTANTS
) -> FeatureSet:
    """Features of the inputs of predictions (serving)."""
    return build_cost_features(InputTable.from_rows(rows), constants)
