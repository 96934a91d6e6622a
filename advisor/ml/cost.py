"""The learned cost models: LightGBM corrections of the analytic model and a convergence classifier, loaded from
a versioned artifact.

An artifact is a version of the model registry's "cost" kind (`models/cost/<version>/`, written by
`python -m training.train_cost`): one LightGBM text model per target, for each host profile other than SNU's a
model of the base's error on that profile's hosts ("<target>@<profile>"), and one for convergence (the card's
files, by role), the interval offsets (per host profile, technique and rho band) and the convergence calibration in its
card. `load_cost_predictor` loads the active version; the registry refuses an artifact whose schema hash differs
from the code's (advisor/ml/cost_features.py), or that is missing or corrupt, and the analytic model is used
instead, saying why.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from advisor.domain.model import Interval, MigrationCost, MigrationInputs, ModelRef, Technique
from advisor.features.inputs import PROFILES, InputTable, dirty_rate_note
from advisor.ml.convergence import Calibration, ConvergenceModel, Guard, convergence_note, guards, pause_note
from advisor.ml.cost_batch import CostBatch
from advisor.ml.cost_features import (
    PROFILE_CODE,
    RHO_BANDS,
    SCHEMA_VERSION,
    TARGETS,
    TECHNIQUES,
    FeatureSet,
    FloatArray,
    IntArray,
    build_cost_features,
    schema_hash,
    schema_versions,
    target_features,
)
from advisor.ml.predictor import AnalyticPredictor, CostPredictor, validate_table
from advisor.ml.registry import Artifact, ArtifactError, ModelRegistry, load_or_fallback
from advisor.ml.trees import Forest
from advisor.physics import apply_guards, validate

log = logging.getLogger(__name__)

KIND = "cost"
MODEL_NAME = "lightgbm-cost"
CONVERGES = "converges"  # the role of the convergence model's file in the card
PROFILE_SEPARATOR = "@"  # a correction's role in the card's files: "<target>@<profile>"
# A migration is answered "converges" when the classifier's probability is above this: more likely than not (a
# calibrated 0.5 is what the lab's held-out migrations say where they are half and half). The physics, whose
# probability comes from its time interval and is not calibrated on outcomes, needs more
# (convergence.CONVERGE_CONFIDENCE): at that level this classifier's false alarms rose from 7% to 13% on lab
# configurations never seen and from 8% to 78% on the lab's first collection as a rig never seen (2026-12-06).
CONVERGE_THRESHOLD = 0.5


def correction_role(target: str, profile: str) -> str:
    return f"{target}{PROFILE_SEPARATOR}{profile}"


def interval_key(profile: str, technique: str, band: str) -> str:
    return f"{profile}|{technique}|{band}"


INTERVAL_KEYS = tuple(interval_key(p, str(t), b) for p in PROFILES for t in TECHNIQUES for b, _ in RHO_BANDS)
# A row's place in INTERVAL_KEYS by (profile, technique, rho band's index in RHO_BANDS), and the bands' upper
# edges as cost_features.rho_band reads them: no key text made per row.
_INTERVAL_INDEX = {(p, t, k): INTERVAL_KEYS.index(interval_key(p, str(t), b))
                   for p in PROFILES for t in TECHNIQUES for k, (b, _) in enumerate(RHO_BANDS)}
_RHO_EDGES = np.array([b for _, b in RHO_BANDS[:-1]])
# the same places by (profile code, technique code, band), for every row at once
_INTERVAL_TABLE = np.array([[[_INTERVAL_INDEX[p, t, k] for k in range(len(RHO_BANDS))] for t in TECHNIQUES]
                            for p in PROFILES], dtype=np.int64)
# each Guard at its code's place (0 to 3, as `guards` gives them): read without the enum's own look-up
_GUARDS = tuple(sorted(Guard, key=int))


@dataclass(frozen=True)
class CostArrays:
    """Predictions for many rows: per target an (n, 3) array of p10, median, p90 (data in MiB)."""

    techniques: tuple[Technique, ...]
    total_time_ms: FloatArray
    downtime_ms: FloatArray
    transferred_mib: FloatArray
    converge_probability: FloatArray
    guard: IntArray  # the physics guard that decided each row's convergence (advisor.physics.Guard codes)
    learned_probability: FloatArray  # the learned model's, before the guards
    features: FeatureSet

    @property
    def first_pass_mib(self) -> FloatArray:
        """What the guards judged each row's first pass to send (the features' schema's reading of the inputs)."""
        return np.asarray(np.exp(self.features.column("log_first_pass_mib")), dtype=np.float64)

    @property
    def cannot_converge(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        return np.asarray((self.guard == Guard.KEEPS_UP) | (self.guard == Guard.DEADLINE))

    @property
    def converges(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        return np.asarray(self.converge_probability > CONVERGE_THRESHOLD)


class LearnedCostPredictor:
    """LightGBM models for total time, downtime and data, each with a conformal p10-p90 interval, and the
    probability of converging."""

    def __init__(self, boosters: Mapping[str, Any], offsets: Mapping[str, Mapping[str, tuple[float, float]]],
                 convergence: ConvergenceModel, version: str, interval_kind: str,
                 corrections: Mapping[str, Mapping[str, Any]] | None = None,
                 correction_techniques: Sequence[str] | None = None, blind_base: bool = False,
                 schema_version: int = SCHEMA_VERSION) -> None:
        """`corrections`: profile -> target -> a model of the base's error on that profile's hosts (log space),
        for the techniques `correction_techniques` (all when None). `blind_base`: the base models were trained
        without the BASE_BLIND features (advisor.ml.cost_features) and are served so."""
        self._blind_base = blind_base
        self._schema_version = schema_version  # the features it was trained on
        for target in TARGETS:
            if target not in boosters or target not in offsets:
                raise ArtifactError(f"no model or interval offsets for {target}")
            expected = len(target_features(target, schema_version))
            if boosters[target].num_feature() != expected:
                raise ArtifactError(f"{target} model reads {boosters[target].num_feature()} features, the schema "
                                    f"gives it {expected}")
            missing = [k for k in INTERVAL_KEYS if k not in offsets[target]]
            if missing:
                raise ArtifactError(f"no interval offsets for {target} / {missing[0]}")
        self._corrections: dict[int, dict[str, Any]] = {}
        for profile, models in (corrections or {}).items():
            if profile not in PROFILE_CODE:
                raise ArtifactError(f"a correction for the unknown host profile {profile!r}")
            for target, model in models.items():
                if target not in TARGETS or model.num_feature() != len(target_features(target, schema_version)):
                    raise ArtifactError(f"the {profile} correction of {target} does not fit the schema")
            self._corrections[PROFILE_CODE[profile]] = dict(models)
        try:
            corrected = [TECHNIQUES.index(Technique(t)) for t in
                         (correction_techniques if correction_techniques is not None else TECHNIQUES)]
        except ValueError as error:
            raise ArtifactError(f"correction techniques: {error}") from None
        self._corrected = np.isin(np.arange(len(TECHNIQUES)), corrected)  # by technique code
        self._boosters = dict(boosters)
        # low <= 0 <= high so the median stays inside the interval; a row per target (TARGETS' order), by the key's
        # place in INTERVAL_KEYS
        self._low = np.array([[min(0.0, float(offsets[t][k][0])) for k in INTERVAL_KEYS] for t in TARGETS])
        self._high = np.array([[max(0.0, float(offsets[t][k][1])) for k in INTERVAL_KEYS] for t in TARGETS])
        self._convergence = convergence
        self._model = ModelRef(name=MODEL_NAME, version=version, interval_kind=interval_kind)

    @property
    def model(self) -> ModelRef:
        return self._model

    def predict(self, inputs: MigrationInputs, technique: Technique) -> MigrationCost:
        return self.predict_many([(inputs, technique)])[0]

    def predict_table(self, table: InputTable) -> CostArrays:
        """All rows at once: one feature build and one booster call per model."""
        fs = build_cost_features(table, version=self._schema_version)
        code = fs.technique_code
        bands = np.searchsorted(_RHO_EDGES, fs.column("dirty_ratio"), side="left")
        profile_code = fs.column("profile").astype(np.int64)  # every profile known (build_cost_features)
        keys = _INTERVAL_TABLE[profile_code, code, bands]
        corrected = self._corrected[code]
        corrected_rows = {profile: rows for profile in self._corrections
                          if (rows := (profile_code == profile) & corrected).any()}
        # every target's median (log space), then their p10 / median / p90 in one block: sorted and exponentiated
        # at once
        median = np.empty((len(TARGETS), len(table)))
        for k, target in enumerate(TARGETS):
            median[k] = self._boosters[target].predict(fs.base_columns(target) if self._blind_base
                                                       else fs.columns(target))
            for profile, rows in corrected_rows.items():
                if target in self._corrections[profile]:  # a correction sees every column as measured
                    median[k, rows] += np.asarray(self._corrections[profile][target].predict(
                        fs.columns(target)[rows]), dtype=np.float64)
            median[k] += fs.offsets(target)
        bounds = np.empty((len(TARGETS), len(table), 3))
        bounds[:, :, 0], bounds[:, :, 1], bounds[:, :, 2] = median + self._low[:, keys], median, \
            median + self._high[:, keys]
        bounds.sort(axis=2)
        total_time, downtime, data = np.exp(bounds)
        learned = self._convergence.learned(fs, table.deadline_ms)
        guard = guards(fs, table.deadline_ms)
        return CostArrays(table.techniques, total_time, downtime, data, apply_guards(learned, guard), guard, learned,
                          fs)

    def predict_arrays(self, rows: Sequence[tuple[MigrationInputs, Technique]]) -> CostArrays:
        for inputs in {id(inputs): inputs for inputs, _ in rows}.values():  # the techniques of one move share theirs
            validate(inputs)
        return self.predict_table(InputTable.from_rows(rows))

    def predict_table_arrays(self, table: InputTable, rows: Callable[[], Sequence[tuple[MigrationInputs, Technique]]]
                             ) -> CostArrays:
        """`predict_arrays` of the rows `table` holds (`rows` makes them; this needs only the table)."""
        validate_table(table, rows)
        return self.predict_table(table)

    def predict_batch(self, rows: Sequence[tuple[MigrationInputs, Technique]]) -> CostBatch:
        """`predict_many` as arrays, a row's MigrationCost made when asked for (advisor.ml.cost_batch)."""
        a = self.predict_arrays(rows)
        # what a row's cost is made of, without the features (a plan keeps its batches while it is made)
        time, downtime, data, converges = a.total_time_ms, a.downtime_ms, a.transferred_mib, a.converges
        p, guard, learned, sent = a.converge_probability, a.guard, a.learned_probability, a.first_pass_mib

        def make(k: int) -> MigrationCost:
            inputs, technique = rows[k]
            return self._cost(inputs, technique, Interval(*time[k].tolist()), Interval(*downtime[k].tolist()),
                              Interval(*data[k].tolist()), bool(converges[k]), float(p[k]), _GUARDS[guard[k]],
                              float(learned[k]), float(sent[k]))

        # NaN where the cost says None (`_cost`: a probability that is not finite)
        return CostBatch(time, downtime, data, converges, np.where(np.isfinite(p), p, np.nan), make)

    def predict_many(self, rows: Sequence[tuple[MigrationInputs, Technique]]) -> list[MigrationCost]:
        if not rows:
            return []
        a = self.predict_arrays(rows)
        # each array read once as Python values: per-element numpy reads cost more than the rows' arithmetic
        columns = zip(rows, a.total_time_ms.tolist(), a.downtime_ms.tolist(), a.transferred_mib.tolist(),
                      a.converges.tolist(), a.converge_probability.tolist(), a.guard.tolist(),
                      a.learned_probability.tolist(), a.first_pass_mib.tolist(), strict=True)
        return [self._cost(inputs, technique, Interval(*time), Interval(*downtime), Interval(*data), converges, p,
                           _GUARDS[guard], learned, sent)
                for (inputs, technique), time, downtime, data, converges, p, guard, learned, sent in columns]

    def _cost(self, inputs: MigrationInputs, technique: Technique, total_time_ms: Interval, downtime_ms: Interval,
              transferred_mib: Interval, converges: bool, p: float, guard: Guard, learned: float, sent_mib: float
              ) -> MigrationCost:
        notes: list[str] = []
        if technique.is_precopy or guard is Guard.DEADLINE:  # post-copy ends, but not before one pass
            notes.append(convergence_note(guard, inputs, technique, learned, p, sent_mib))
        if pause := pause_note(technique, converges, downtime_ms.median, inputs.max_downtime_ms):
            notes.append(pause)
        unknown_rate = dirty_rate_note(inputs)
        if unknown_rate:
            notes.append(unknown_rate)
        if inputs.memory_source == "configured":
            notes.append(f"memory in use unknown: all {inputs.memory_mib:.0f} MiB configured assumed copied")
        return MigrationCost(technique=technique, total_time_ms=total_time_ms, downtime_ms=downtime_ms,
                             transferred_mib=transferred_mib, converges=converges, model=self._model,
                             notes=tuple(notes), converge_probability=p if math.isfinite(p) else None)


def registry(models_dir: Path) -> ModelRegistry:
    return ModelRegistry(models_dir, KIND, schema_hash(), retrain_hint="python -m training.train_cost",
                         also_reads=schema_versions())


def load_artifact(artifact: Artifact) -> LearnedCostPredictor:
    """Load one checked version; raises ArtifactError (or a card error the registry reports) saying what is wrong."""
    boosters = {target: Forest.from_file(artifact.path(target)) for target in TARGETS}
    corrections: dict[str, dict[str, Any]] = {}
    for role in artifact.card["files"]:
        target, _, profile = str(role).partition(PROFILE_SEPARATOR)
        if profile:
            corrections.setdefault(profile, {})[target] = Forest.from_file(artifact.path(role))
    intervals = artifact.card["intervals"]
    parsed = {t: {k: (float(v[0]), float(v[1])) for k, v in dict(intervals["offsets"][t]).items()} for t in TARGETS}
    calibration = artifact.card["convergence"]["calibration"]
    try:
        convergence = ConvergenceModel(Forest.from_file(artifact.path(CONVERGES)),
                                       Calibration(tuple(calibration["raw"]), tuple(calibration["calibrated"])))
    except ValueError as error:
        raise ArtifactError(str(error)) from None
    return LearnedCostPredictor(boosters, parsed, convergence, version=artifact.version,
                                interval_kind=str(intervals["kind"]), corrections=corrections,
                                correction_techniques=artifact.card.get("correction_techniques"),
                                blind_base=bool(artifact.card.get("base_blind", False)),
                                schema_version=schema_versions()[str(artifact.card["schema_hash"])])


def load_cost_predictor(models_dir: Path) -> CostPredictor:
    """The active learned model under `models_dir` (e.g. models/cost), else the analytic model with the reason
    (serving wraps it in advisor.ml.profile_serving, which then answers every profile by the physics)."""

    def fallback(reason: str) -> CostPredictor:
        log.warning("learned cost model refused, serving the physics: %s", reason)
        return AnalyticPredictor(fallback_reason=reason)

    return load_or_fallback(registry(Path(models_dir)), load_artifact, fallback)
