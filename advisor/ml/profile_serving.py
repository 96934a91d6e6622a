"""Serving every host profile: the ones the learned model knows (advisor.features.inputs.PROFILES) by the learned
model, a calibrated one by the physics with its fitted parameters and its own intervals, and a name never
calibrated by the physics' defaults with the intervals of a profile left out -- said so in the notes, never
silently served as another profile. A profile calibrated whose active version cannot be read is served as one
never calibrated, and its notes say why. Where the learned model was refused (advisor.ml.cost falls back to the
bare analytic formulas, which know no working set, first pass or deadline), every profile is served by the
physics, its own calibration where one was stored, and every answer carries the refusal's reason."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from advisor.domain.model import Interval, MigrationCost, MigrationInputs, ModelRef, Technique
from advisor.domain.text import counted
from advisor.features.inputs import DEFAULT_PROFILE, PROFILES, InputTable, dirty_rate_note
from advisor.ml.convergence import CONVERGE_CONFIDENCE, convergence_note, pause_note
from advisor.ml.cost_batch import CostBatch, cost_batch, eager_batch
from advisor.ml.predictor import CostPredictor, cost_rows
from advisor.ml.profiles import (
    TARGETS,
    HostProfile,
    contention_factor,
    dirty_rate,
    physics,
    uncalibrated,
    usable_mib_s,
)
from advisor.ml.registry import ArtifactError
from advisor.physics import TECHNIQUES, Guard, validate
from advisor.physics.guards import verdicts

PROFILE_MODEL = "calibrated-physics"
LEFT_OUT = "profile left out (p10-p90)"  # the interval kind of a profile with none of its own migrations


def uncalibrated_model(fallback_reason: str = "") -> ModelRef:
    """The model of a profile never calibrated: the physics' defaults, the intervals of a profile left out."""
    return ModelRef(PROFILE_MODEL, "uncalibrated", LEFT_OUT, fallback_reason)
_Z90 = 1.2815515655446004  # the standard normal's 90th percentile


def within_deadline_probability(time_ms: Interval, deadline_ms: float) -> float:
    """P(time <= deadline) with the time log-normal through its p10, median and p90 (1.0 with no deadline)."""
    if deadline_ms <= 0:
        return 1.0
    spread = max(math.log(time_ms.high / time_ms.median), math.log(time_ms.median / time_ms.low), 1e-6) / _Z90
    z = math.log(deadline_ms / time_ms.median) / spread
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


class ProfileServingPredictor:
    """`inner` for the profiles it knows; `lookup(name)` gives a calibrated profile, None for one never calibrated,
    and raises ArtifactError for one whose active version cannot be read."""

    def __init__(self, inner: CostPredictor, lookup: Callable[[str], HostProfile | None]) -> None:
        self.inner = inner
        self._lookup = lookup
        # a refused learned model knows no profile: its fallback's formulas would ignore what the physics reads
        self._refused = inner.model.fallback_reason
        self._profiles = () if self._refused else PROFILES

    @property
    def model(self) -> ModelRef:
        if self._refused:
            return uncalibrated_model(self._refused)
        return self.inner.model

    def _inner_serves(self, profiles: Iterable[str]) -> bool:
        return all((p or DEFAULT_PROFILE) in self._profiles for p in profiles)

    def predict(self, inputs: MigrationInputs, technique: Technique) -> MigrationCost:
        return self.predict_many([(inputs, technique)])[0]

    def predict_many(self, rows: Sequence[tuple[MigrationInputs, Technique]]) -> list[MigrationCost]:
        known = [k for k, (i, _) in enumerate(rows) if self._inner_serves((i.host_profile,))]
        if len(known) == len(rows):  # every row the inner model's (a question's, most often): its list as it is
            return self.inner.predict_many(rows)
        out: list[MigrationCost | None] = [None] * len(rows)
        for k, cost in zip(known, self.inner.predict_many([rows[k] for k in known]), strict=True):
            out[k] = cost
        others: dict[str, list[int]] = {}
        for k, (i, _) in enumerate(rows):
            if out[k] is None:
                others.setdefault(i.host_profile or DEFAULT_PROFILE, []).append(k)
        for name, indices in others.items():
            try:
                profile, unreadable = self._lookup(name), ""
            except ArtifactError as error:
                profile, unreadable = None, str(error)
            for k, cost in zip(indices, profile_costs([rows[k] for k in indices], name, profile, unreadable,
                                                      self._refused), strict=True):
                out[k] = cost
        return [c for c in out if c is not None]

    def predict_arrays(self, rows: Sequence[tuple[MigrationInputs, Technique]]) -> Any:
        """The inner model's arrays when it serves every row (plans ask for 10^5 rows at once), else the same
        arrays from predict_many."""
        inner = getattr(self.inner, "predict_arrays", None)
        if inner is not None and self._inner_serves(i.host_profile for i, _ in rows):
            return inner(rows)
        return cost_rows(self.predict_many(rows))

    def predict_batch(self, rows: Sequence[tuple[MigrationInputs, Technique]]) -> CostBatch:
        """`predict_many` as a batch (advisor.ml.cost_batch): the inner model's when it serves every row."""
        if self._inner_serves(i.host_profile for i, _ in rows):
            return cost_batch(self.inner, rows)
        return eager_batch(self.predict_many(rows))

    def predict_table_arrays(self, table: InputTable,
                             rows: Callable[[], Sequence[tuple[MigrationInputs, Technique]]]) -> Any:
        """`predict_arrays` of the rows `table` holds: the inner model's from the table alone when it serves every
        row, else from the rows (`rows()` makes them)."""
        inner = getattr(self.inner, "predict_table_arrays", None)
        if inner is not None and self._inner_serves(table.profiles):
            return inner(table, rows)
        return self.predict_arrays(rows())


def contention_note(inputs: MigrationInputs, contention: float) -> str | None:
    """What the hosts' load does to the prediction, where the profile says load slows its migrations."""
    if contention <= 0:
        return None
    if inputs.load_per_cpu is None:
        return "hosts' load not measured: taken as slowing nothing"
    factor = float(contention_factor(np.array([inputs.load_per_cpu]), contention)[0])
    if factor <= 1.0:
        return None
    return (f"hosts at {inputs.load_per_cpu:.1f} runnable threads per CPU: pages move {factor:.2f}x slower "
            f"(the profile's contention {contention:g} per thread past one per CPU)")


def profile_costs(rows: Sequence[tuple[MigrationInputs, Technique]], name: str, profile: HostProfile | None,
                  unreadable: str = "", refused: str = "") -> list[MigrationCost]:
    """The physics' costs with a profile's parameters and intervals (`profile` None: never calibrated, or
    `unreadable` saying why its calibration cannot be read); `refused`: why the learned model that would serve
    this profile was refused."""
    for inputs, _ in rows:
        validate(inputs)
    if not rows:
        return []
    chosen = profile if profile is not None else uncalibrated(name)
    if profile is None:
        uncalibrated_as = "physics with default parameters, intervals of a profile left out"
        note = (f"profile {name} is calibrated but its active version is unreadable ({unreadable}): {uncalibrated_as}"
                if unreadable else f"profile {name} is not calibrated: {uncalibrated_as}")
        model = uncalibrated_model(unreadable)
    elif profile.migrations == 0:  # calibrated like a known profile, none of its own migrations yet
        note = (f"profile {name} has none of its own migrations yet: {profile.base}'s parameters, intervals of a "
                f"profile left out (version {profile.version})")
        model = ModelRef(PROFILE_MODEL, f"{name}/{profile.version}", LEFT_OUT)
    else:
        like = f", like {profile.base}" if profile.base else ""
        note = (f"profile {name} calibrated from {counted(profile.migrations, 'migration')}{like} "
                f"(version {profile.version})")
        model = ModelRef(PROFILE_MODEL, f"{name}/{profile.version}", "split conformal per technique (p10-p90)")
    if refused:
        note = f"learned cost model refused ({refused}); {note}"
        model = replace(model, fallback_reason=model.fallback_reason or refused)
    table = InputTable.from_rows(rows).blind_at_floor()
    a = physics(table, chosen.parameters)
    deadline = table.deadline_ms
    code = np.array([TECHNIQUES.index(t) for t in table.techniques], dtype=np.int64)
    # the same guards as the learned model's, on the calibrated physics' bandwidth
    guard_codes = verdicts(code, table.first_pass_mib, usable_mib_s(table, chosen.parameters),
                           dirty_rate(table, chosen.parameters), table.longest_working_set_mib,
                           table.max_downtime_ms, deadline, dirty_known=table.dirty_rate_known)
    costs = []
    for k, (inputs, technique) in enumerate(rows):
        bands = []
        for target in TARGETS:
            physical = float(getattr(a, target)[k])
            low, shift, high = chosen.interval(technique, target)
            bands.append(Interval(physical * math.exp(low), physical * math.exp(shift), physical * math.exp(high)))
        guard = Guard(int(guard_codes[k]))
        within = within_deadline_probability(bands[0], float(deadline[k])) if technique.is_precopy else 1.0
        probability = ((within if bool(a.converges[k]) else 0.0) if guard.converges is None
                       else float(guard.converges))
        converges = probability >= CONVERGE_CONFIDENCE
        notes = [note]
        if (technique.is_precopy and guard is not Guard.NONE) or guard is Guard.DEADLINE:  # post-copy: DEADLINE only
            notes.append(convergence_note(guard, inputs, technique, float(converges), float(converges)))
        elif technique.is_precopy and not converges:
            notes.append("does not converge by the physics"
                         + (f" within the deadline (p = {probability:.2f} of ending within "
                            f"{deadline[k] / 1000:.0f} s)" if bool(a.converges[k])
                            else f" ({int(a.rounds[k])} rounds)"))
        if pause := pause_note(technique, converges, bands[1].median, inputs.max_downtime_ms):
            notes.append(pause)
        unknown_rate = dirty_rate_note(inputs)
        if unknown_rate:
            notes.append(unknown_rate)
        elif inputs.dirty_rate_at_floor:
            notes.append(f"dirty rate read {inputs.dirty_rate_mib_s:.1f} MiB/s, page sampling's floor, while its "
                         "longer window read nothing and the guest is busy: taken as unknown, as fast as the link "
                         f"moves ({float(table.dirty_rate_mib_s[k]):.1f} MiB/s), to stay on the safe side")
        if slowed := contention_note(inputs, chosen.parameters["contention"]):
            notes.append(slowed)
        costs.append(MigrationCost(technique, bands[0], bands[1], bands[2], converges, model, tuple(notes),
                                   converge_probability=round(probability, 4)))
    return costs


