"""The feature schema of the learned cost models, shared by training and serving.

Features are built from what production can observe before a migration (memory in use and configured, the dirty
rate over one and over longer windows, bandwidth and the migration's cap, the allowed downtime, which kind of
hosts), plus the physics' own predictions at the row's allowed downtime, so a learner only has to learn what the
physics leaves. The physics is advisor.physics.working_set_arrays: the first pass sends what QEMU sends (the
non-zero pages, estimated by `first_pass_mib` from memory in use and RAM, or measured), each later round re-sends
min(working set, rate x round time) with the working set of the longest window measured. One builder
(`build_cost_features`) serves training, serving and the batch CLI: it reads an InputTable
(advisor.features.inputs), which both a table and served inputs become.

What decides whether pre-copy converges is the guest's writable working set against what the link moves within
the allowed downtime (the "budget"): `log_wss_over_budget` compares the largest working set the measurements show
(the 1 s dirty rate times 1 s, or the longer windows' reading) with it. Unknown values are NaN (LightGBM sends
them down the branch learned for missing values); training shows the models rows with and without the optional
measurements, so each knows what to do without them.

The schema hash covers the feature names and order, the technique and profile codes, the units, the analytic
constants and which features each target's model uses: change any of them and a stored artifact is refused.
Earlier schemas are built side by side (`READABLE_SCHEMAS`), so a model is served as it was trained while a candidate
of the current schema is compared with it on the same rows: v7 reads the first pass from what the guest's QEMU
holds resident where measured (advisor.physics.first_pass_mib), v6 adds the hosts' load (runnable threads per CPU)
as the last feature, v5 checks QEMU's stop rule whenever what is pending falls below the budget, v4 only after whole
rounds. A feature added is added last, so every other keeps its column in every schema's matrix.
"""

from __future__ import annotations

import dataclasses
import functools
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
from advisor.features.inputs import INPUT_COLUMNS, PROFILES, InputTable
from advisor.physics import (
    BUSY_VCPU_UTILIZATION,
    DEFAULT_CONSTANTS,
    TECHNIQUES,
    ZERO_READING_MIB,
    AnalyticArrays,
    AnalyticConstants,
    analytic_arrays,
    first_pass_mib,
    working_set_arrays,
)
from advisor.physics.guards import MIN_WORKING_SET_MIB
from advisor.physics.rounds import BoolArray, FloatArray, IntArray

__all__ = ["BASE_BLIND", "FEATURES", "FEATURE_NAMES", "PROFILE_CODE", "RHO_BANDS", "TARGETS", "TECHNIQUES",
           "TECHNIQUE_CODE",
           "AnalyticArrays", "BoolArray", "FeatureSet", "FloatArray", "IntArray", "analytic_arrays",
           "build_cost_features", "build_features", "build_features_from_inputs", "rho_band", "schema_hash",
           "schema_versions"]

StrArray = npt.NDArray[np.str_]

SCHEMA_VERSION: Final = 7
# Earlier schemas this code still builds: v6 reads the first pass from memory in use where v7 reads resident memory,
# v5 also lacks the hosts' load (v6's last feature), v4 also checks the physics' stop rule only after whole rounds.
READABLE_SCHEMAS: Final = (6, 5, 4)
TECHNIQUE_CODE: Final[Mapping[str, int]] = {str(t): i for i, t in enumerate(TECHNIQUES)}
PROFILE_CODE: Final[Mapping[str, int]] = {p: i for i, p in enumerate(PROFILES)}

# (name, monotone direction of the migration's total time and data as the dirty rate rises, bandwidth falls or
# the allowed downtime shrinks). Every feature that moves with the dirty rate, the bandwidth or the allowed
# downtime has a direction, so constraining the time and data models to these directions guarantees: more dirty
# rate never predicts a faster migration, more bandwidth or more allowed downtime never a slower one. The
# analytic downtime is a sawtooth in the dirty rate (one more round resets it), so time and data do not use it.
FEATURES: Final[tuple[tuple[str, int], ...]] = (
    ("technique", 0),  # categorical, code from TECHNIQUES
    ("profile", 0),  # categorical, code from PROFILES: which kind of hosts
    ("log_memory_mib", 0),  # memory in use where measured, else configured
    ("log_first_pass_mib", 0),  # what the first pass sends (advisor.physics.first_pass_mib)
    ("memory_known", 0),  # 1 when memory in use was measured
    ("log_memory_configured_mib", 0),  # NaN when unknown
    ("log1p_dirty_rate_mib_s", 1),
    ("log_bandwidth_mib_s", -1),
    ("log_max_bandwidth_mib_s", -1),
    ("dirty_ratio", 1),  # rho: dirty rate / usable bandwidth
    ("log_budget_mib", -1),  # what the link moves within the allowed downtime
    ("log_wss_over_budget", 1),  # the largest working set measured, over the budget
    ("log1p_working_set_mib", 1),  # the longest window's working set; NaN when no window beyond 1 s was measured
    ("log_max_downtime_ms", -1),
    ("log_analytic_total_time_ms", 1),
    ("log_analytic_transferred_mib", 1),
    ("analytic_rounds", 1),
    ("analytic_not_converged", 1),
    ("log_analytic_downtime_ms", 0),
    # v6: the hosts' runnable threads per CPU (NaN: not measured); a busier host never migrates faster. Last, so
    # every other feature keeps its place in the matrix of every schema.
    ("load_per_cpu", 1),
)
FEATURE_NAMES: Final[tuple[str, ...]] = tuple(name for name, _ in FEATURES)
# Features each schema this code reads was trained on: before v6, all but the hosts' load.
_ADDED_IN: Final[Mapping[str, int]] = {"load_per_cpu": 6}
CATEGORICAL_FEATURES: Final[tuple[str, ...]] = ("technique", "profile")

TARGETS: Final[tuple[str, ...]] = ("total_time_ms", "downtime_ms", "transferred_mib")
TARGET_FEATURES: Final[Mapping[str, tuple[str, ...]]] = {
    "total_time_ms": tuple(n for n in FEATURE_NAMES if n != "log_analytic_downtime_ms"),
    "transferred_mib": tuple(n for n in FEATURE_NAMES if n != "log_analytic_downtime_ms"),
    "downtime_ms": FEATURE_NAMES,
}
# What the base models (learned from the SNU data alone) see as the SNU data describe every migration: the SNU
# runs never vary these (always 300 ms, one kind of host, memory in use given, no working set measured) or vary
# them only as functions of the usable bandwidth and the dirty rate, so a base that read a new allowed downtime
# or a measured working set would take them for a different bandwidth. The base reads them as the SNU data would
# have them (`FeatureSet.base_columns`); the analytic features keep the real allowed downtime, and a profile's
# correction model sees everything as measured.
BASE_BLIND: Final[tuple[str, ...]] = ("profile", "memory_known", "log_memory_configured_mib", "log_budget_mib",
                                      "log_wss_over_budget", "log1p_working_set_mib", "log_max_downtime_ms",
                                      "load_per_cpu")
SNU_DOWNTIME_MS: Final = 300.0
MONOTONE_TARGETS: Final[frozenset[str]] = frozenset({"total_time_ms", "transferred_mib"})
# What each target's model predicts on top of (in log space): the model learns log(actual / offset). Time and data
# are learned relative to one pass over the first pass's memory (M / usable bandwidth, M), downtime relative to the
# analytic downtime. Multi-thread compression's time falls more slowly than 1/bandwidth (its threads fall behind
# as the link gets faster): its offsets use the bandwidth to the power COMPRESS_BANDWIDTH_EXPONENT around a
# reference bandwidth (see docs/cost-model.md).
COMPRESS_BANDWIDTH_EXPONENT: Final = 0.5
COMPRESS_REFERENCE_BANDWIDTH_MIB_S: Final = 25.0
TARGET_OFFSETS: Final[Mapping[str, str]] = {
    "total_time_ms": "log(first_pass_mib / usable_bandwidth_mib_s * 1000); precopy_compress: "
    "log(first_pass_mib / (usable_bandwidth_mib_s^a * ref^(1-a)) * 1000)",
    "transferred_mib": "log(first_pass_mib); precopy_compress: "
    "log(first_pass_mib * (usable_bandwidth_mib_s / ref)^(1-a))",
    "downtime_ms": "log(analytic_downtime_ms)",
}
# Intervals are calibrated per band of rho (dirty rate / usable bandwidth): they must be widest where migrations
# are risky. Upper bounds of each band, the last open.
RHO_BANDS: Final[tuple[tuple[str, float], ...]] = (("rho<=0.4", 0.4), ("0.4<rho<=1", 1.0), ("rho>1", math.inf))


def rho_band(dirty_ratio: FloatArray) -> StrArray:
    """The band name of each row's rho."""
    edges = np.array([b for _, b in RHO_BANDS[:-1]])
    names = np.array([n for n, _ in RHO_BANDS])
    return np.asarray(names[np.searchsorted(edges, dirty_ratio, side="left")])


@functools.cache  # a few versions; a served question asks twice
def feature_names(version: int = SCHEMA_VERSION) -> tuple[str, ...]:
    """The features a model of schema `version` was trained on, in matrix order."""
    return tuple(n for n in FEATURE_NAMES if _ADDED_IN.get(n, 0) <= version)


def target_features(target: str, version: int = SCHEMA_VERSION) -> tuple[str, ...]:
    """The features of a target's model of schema `version`."""
    known = feature_names(version)
    return tuple(n for n in TARGET_FEATURES[target] if n in known)


def monotone_constraints(target: str) -> list[int]:
    """LightGBM's `monotone_constraints` for a target's feature subset (all zero for unconstrained targets)."""
    direction = dict(FEATURES)
    return [direction[n] if target in MONOTONE_TARGETS else 0 for n in TARGET_FEATURES[target]]


_POSITION: Final[Mapping[str, int]] = {n: k for k, n in enumerate(FEATURE_NAMES)}
# per schema version and target: the matrix columns its models read
_TARGET_POSITIONS: Final[Mapping[int, Mapping[str, IntArray]]] = {
    v: {t: np.array([_POSITION[n] for n in target_features(t, v)], dtype=np.intp) for t in TARGETS}
    for v in (SCHEMA_VERSION, *READABLE_SCHEMAS)}


def categorical_positions(target: str) -> list[int]:
    names = TARGET_FEATURES[target]
    return [names.index(c) for c in CATEGORICAL_FEATURES]


def schema_document(constants: AnalyticConstants = DEFAULT_CONSTANTS, version: int = SCHEMA_VERSION
                    ) -> dict[str, object]:
    _check_schema(version)
    names = feature_names(version)
    document: dict[str, object] = {
        "schema_version": version,
        "features": [list(f) for f in FEATURES if f[0] in names],
        "categorical": list(CATEGORICAL_FEATURES),
        "techniques": [str(t) for t in TECHNIQUES],
        "profiles": list(PROFILES),
        "inputs": list(INPUT_COLUMNS),
        "units": {"memory": "MiB", "dirty_rate": "MiB/s (from 4 KiB pages/s)", "bandwidth": "MiB/s (from Mbit/s)",
                  "max_bandwidth": "MiB/s", "downtime": "ms", "working_set": "MiB"},
        "analytic_constants": dataclasses.asdict(constants),
        "targets": {t: list(target_features(t, version)) for t in TARGETS},
        "monotone_targets": sorted(MONOTONE_TARGETS),
        "base_blind": [n for n in BASE_BLIND if n in names], "base_downtime_ms": SNU_DOWNTIME_MS,
        "target_offsets": dict(TARGET_OFFSETS),
        "compress_offset": {"a": COMPRESS_BANDWIDTH_EXPONENT, "ref_mib_s": COMPRESS_REFERENCE_BANDWIDTH_MIB_S},
        "rho_bands": [[n, b if math.isfinite(b) else None] for n, b in RHO_BANDS],
        "min_working_set_mib": MIN_WORKING_SET_MIB,
        "physics": {"model": "advisor.physics.working_set_arrays",
                    "first_pass": "nonzero_memory_mib where measured, else memory in use (RAM - MemAvailable), "
                                  "else RAM; at most RAM",
                    "working_set": "max(longer window MiB, 1 s rate x 1 s); unknown without a longer window",
                    "blind_dirty_rate": {"busy_vcpu_utilization": BUSY_VCPU_UTILIZATION,
                                         "zero_reading_mib": ZERO_READING_MIB}},
    }
    if version >= 7:
        document["physics"]["first_pass"] = (  # type: ignore[index]
            "nonzero_memory_mib where measured, else resident_memory_mib less QEMU's own (within 1-2x memory in "
            "use where measured) where measured, else memory in use (RAM - MemAvailable), else RAM; at most RAM")
    if version >= 6:
        document["units"]["load_per_cpu"] = "runnable threads per CPU (1-minute load average / CPUs)"  # type: ignore[index]
    if version >= 5:  # v4's document is kept as it was, so its hash is unchanged
        physics = document["physics"]
        assert isinstance(physics, dict)
        physics["stop_rule"] = "checked whenever what is pending falls below the budget (QEMU's syncs)"
    return document


def schema_hash(constants: AnalyticConstants = DEFAULT_CONSTANTS, version: int = SCHEMA_VERSION) -> str:
    """sha256 of the canonical JSON of the schema: stable across processes and platforms."""
    text = json.dumps(schema_document(constants, version), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def schema_versions() -> Mapping[str, int]:
    """The schema version of each hash this code reads (the current one and READABLE_SCHEMAS)."""
    return {schema_hash(version=v): v for v in (SCHEMA_VERSION, *READABLE_SCHEMAS)}


def _check_schema(version: int) -> None:
    if version != SCHEMA_VERSION and version not in READABLE_SCHEMAS:
        raise ValueError(f"feature schema v{version} is not built by this code (v{SCHEMA_VERSION}, "
                         f"{', '.join(f'v{v}' for v in READABLE_SCHEMAS)})")


@dataclass(frozen=True)
class FeatureSet:
    """The feature matrix (columns in `feature_names(version)` order) and the analytic predictions it was built
    from."""

    matrix: FloatArray
    analytic: AnalyticArrays
    # per row: False where the dirty rate is unknown (not measured, or blind) and taken as the link's; not a
    # feature (the models read the rate taken), but the physics' guards judge such a row by its technique
    dirty_rate_known: BoolArray | None = None
    version: int = SCHEMA_VERSION  # the schema whose models read it (`columns`)

    def column(self, name: str) -> FloatArray:
        return self.matrix[:, _POSITION[name]]

    @functools.cached_property
    def technique_code(self) -> IntArray:
        """Each row's technique code as integers, made once per set (a served question reads it four times)."""
        return self.column("technique").astype(np.int64)

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.matrix, columns=list(feature_names(self.version)))

    def subset(self, mask: BoolArray | IntArray) -> FeatureSet:
        a = self.analytic
        known = None if self.dirty_rate_known is None else self.dirty_rate_known[mask]
        return FeatureSet(self.matrix[mask], AnalyticArrays(
            a.total_time_ms[mask], a.downtime_ms[mask], a.transferred_mib[mask], a.converges[mask], a.rounds[mask]),
            known, self.version)

    def columns(self, target: str) -> FloatArray:
        """The feature matrix of a target's model."""
        return self.matrix[:, _TARGET_POSITIONS[self.version][target]]

    def base_columns(self, target: str) -> FloatArray:
        """The feature matrix of a target's base model: the BASE_BLIND columns as an SNU run would have them."""
        return self._blind[:, _TARGET_POSITIONS[self.version][target]]

    @functools.cached_property
    def _blind(self) -> FloatArray:
        """The whole matrix with the BASE_BLIND columns as an SNU run would have them (built once per set)."""
        x = self.matrix.copy()
        usable = np.exp(np.minimum(self.column("log_bandwidth_mib_s"), self.column("log_max_bandwidth_mib_s")))
        budget = np.maximum(usable * SNU_DOWNTIME_MS / 1000.0, 1e-6)
        dirty = np.expm1(self.column("log1p_dirty_rate_mib_s"))
        snu: dict[str, float | FloatArray] = {"profile": 0.0, "memory_known": 1.0, "log_memory_configured_mib": np.nan,
               "log_budget_mib": np.log(budget),
               "log_wss_over_budget": np.log(np.maximum(dirty, MIN_WORKING_SET_MIB) / budget),
               "log1p_working_set_mib": np.nan, "log_max_downtime_ms": math.log(SNU_DOWNTIME_MS),
               "load_per_cpu": np.nan}
        names = feature_names(self.version)
        for name in BASE_BLIND:
            if name in names:
                x[:, _POSITION[name]] = snu[name]
        return x

    def offset(self, target: str) -> FloatArray:
        """TARGET_OFFSETS[target] for every row."""
        return self.offsets(target).copy()

    def offsets(self, target: str) -> FloatArray:
        """`offset` without its copy, for a caller that only reads it (never to be written to)."""
        if target in ("total_time_ms", "transferred_mib"):
            return self._pass_offsets[target]
        if target == "downtime_ms":
            return self.column("log_analytic_downtime_ms")
        raise KeyError(target)

    @functools.cached_property
    def _pass_offsets(self) -> dict[str, FloatArray]:
        """Time's and data's offsets, built once per set from what they share (serving asks for each twice)."""
        log_usable = np.minimum(self.column("log_bandwidth_mib_s"), self.column("log_max_bandwidth_mib_s"))
        log_memory = self.column("log_first_pass_mib")
        compress = self.column("technique") == float(TECHNIQUES.index(Technique.PRECOPY_COMPRESS))
        a = np.where(compress, COMPRESS_BANDWIDTH_EXPONENT, 1.0)  # exponent of the usable bandwidth
        log_ref = math.log(COMPRESS_REFERENCE_BANDWIDTH_MIB_S)
        one_pass: FloatArray = log_memory - a * log_usable - (1.0 - a) * log_ref + math.log(1000.0)
        data: FloatArray = log_memory + (1.0 - a) * (log_usable - log_ref)
        return {"total_time_ms": one_pass, "transferred_mib": data}

    def bands(self) -> StrArray:
        return rho_band(self.column("dirty_ratio"))


def profile_codes(profiles: Sequence[str]) -> FloatArray:
    """The learned models' profile codes; a profile they do not know is refused (ValueError), never taken as
    another: advisor.ml.profile_serving serves those by the physics."""
    try:  # one pass for the 10^5 rows of a plan; the unknown ones named when there are any
        return np.fromiter(map(PROFILE_CODE.__getitem__, profiles), dtype=np.float64, count=len(profiles))
    except (KeyError, TypeError):
        unknown = sorted({p for p in profiles if p not in PROFILE_CODE})
        raise ValueError(f"host profile(s) unknown to the learned model: {', '.join(map(repr, unknown[:5]))}"
                         ) from None


def build_cost_features(table: InputTable, constants: AnalyticConstants = DEFAULT_CONSTANTS,
                        version: int = SCHEMA_VERSION) -> FeatureSet:
    """The feature matrix of an InputTable (validated beforehand) in schema `version`."""
    _check_schema(version)
    code = technique_codes(table.techniques)
    memory, dirty = table.memory_mib, table.dirty_rate_mib_s
    bandwidth, cap, downtime = table.bandwidth_mib_s, table.max_bandwidth_mib_s, table.max_downtime_ms
    usable = table.usable_mib_s
    working_set = table.longest_working_set_mib
    # before v7 the models were trained on a first pass that never read what QEMU holds resident
    first_pass = (table.first_pass_mib if version >= 7 else
                  first_pass_mib(memory, table.memory_configured_mib, table.nonzero_memory_mib))
    # schema v4 was trained on the physics that checks its stop only after whole rounds
    a = working_set_arrays(code, memory, working_set, dirty, usable, downtime, first_pass, constants,
                           sync_below_budget=version >= 5)
    budget = np.maximum(usable * downtime / 1000.0, 1e-6)
    # The largest working set measured: what the guest dirtied within 1 s, or over the longer windows.
    seen = np.fmax(dirty * 1.0, working_set)
    columns = {
        "technique": code.astype(np.float64),
        "profile": profile_codes(table.profiles),
        "log_memory_mib": np.log(memory),
        "log_first_pass_mib": np.log(np.maximum(first_pass, 1e-3)),
        "memory_known": table.memory_known.astype(np.float64),
        "log_memory_configured_mib": np.log(table.memory_configured_mib),
        "log1p_dirty_rate_mib_s": np.log1p(dirty),
        "log_bandwidth_mib_s": np.log(bandwidth),
        "log_max_bandwidth_mib_s": np.log(cap),
        "dirty_ratio": dirty / usable,
        "log_budget_mib": np.log(budget),
        "log_wss_over_budget": np.log(np.maximum(seen, MIN_WORKING_SET_MIB) / budget),
        "log1p_working_set_mib": np.log1p(working_set),
        "log_max_downtime_ms": np.log(np.maximum(downtime, 1.0)),
        "log_analytic_total_time_ms": np.log(a.total_time_ms),
        "log_analytic_transferred_mib": np.log(a.transferred_mib),
        "analytic_rounds": a.rounds.astype(np.float64),
        "analytic_not_converged": (~a.converges).astype(np.float64),
        "log_analytic_downtime_ms": np.log(a.downtime_ms),
        "load_per_cpu": table.load_per_cpu,
    }
    # the columns side by side in one copy (a column written at a time costs more for the few rows of a question)
    names = feature_names(version)
    matrix = np.ascontiguousarray(np.array([columns[name] for name in names], dtype=np.float64)
                                  .reshape(len(names), len(code)).T)
    return FeatureSet(matrix=matrix, analytic=a, dirty_rate_known=table.dirty_rate_known, version=version)


def technique_codes(techniques: Sequence[str] | pd.Series) -> IntArray:
    """Codes of technique names; raises KeyError naming the first unknown one."""
    try:  # a Technique (a StrEnum) finds its name's code: no str() of each of the 10^5 rows of a plan
        return np.fromiter(map(TECHNIQUE_CODE.__getitem__, techniques), dtype=np.int64, count=len(techniques))
    except (KeyError, TypeError):
        return np.array([TECHNIQUE_CODE[str(t)] for t in techniques], dtype=np.int64)


def build_features(frame: pd.DataFrame, constants: AnalyticConstants = DEFAULT_CONSTANTS,
                   version: int = SCHEMA_VERSION) -> FeatureSet:
    """Features of a table of migrations in the columns and units of the shared data (training, batch)."""
    return build_cost_features(InputTable.from_frame(frame), constants, version)


def build_features_from_inputs(
    rows: Sequence[tuple[MigrationInputs, Technique]], constants: AnalyticConstants = DEFAULT_CONSTANTS,
    version: int = SCHEMA_VERSION,
) -> FeatureSet:
    """Features of the inputs of predictions (serving)."""
    return build_cost_features(InputTable.from_rows(rows), constants, version)
