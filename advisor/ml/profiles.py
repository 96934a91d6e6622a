"""Host profiles as data: a few physical parameters of the physics (advisor.physics) fitted from a host's executed
migrations, and the residual quantiles that give its intervals. Pure: storage is advisor.ml.profile_store's.

The parameters, each with its prior (the uncalibrated physics) and bounds:

- `throughput`: the usable bandwidth (the lower of link and cap) times this is what the host really moves;
- `round_overhead_ms`: what each pre-copy round costs beyond sending (QEMU's bookkeeping, a slow guest);
- `downtime_scale` and `stop_ms`: the measured stop is the physics' (the last round's pages at the usable
  bandwidth, the device state) times the scale, plus a fixed cost. QEMU lifts the bandwidth cap for the stop
  (migration_completion sets an unlimited rate), so where the link is faster than the cap the last pages take a
  fraction of what the physics says and what is left is the host's fixed cost of stopping and resuming: the lab's
  stops are 15-90 ms whatever the allowed downtime (100-1000 ms);
- `sent_memory_factor`: the memory QEMU sends (its non-zero pages) over the physics' estimate of them
  (advisor.physics.first_pass_mib: memory in use, RAM - MemAvailable), at most all of the RAM.
- `compress_mib_s`: the pages per second multi-thread compression gets through, CPU-bound where the link is
  faster: the lab's TCG host compresses about 27 MiB/s, so its compression is 7-10x slower than the link at a
  64 MiB/s cap and link-bound at 8 (a per-technique factor cannot fit both). The prior, 200 MiB/s, leaves any
  link below 132 MiB/s on the wire as the limit;
- `dirty_scale`: how fast the guest dirties during the migration over what was measured before it (a guest
  slowed by dirty tracking, or by the migration's own CPU on a busy host: the lab's fit 0.54).
- `stop_mib_s`: how fast the host sends the last pages once QEMU has lifted the cap for the stop, where that is
  faster than the usable bandwidth (0, the prior: not known, the stop at the usable bandwidth). At the cap, what is
  left (at most the cap times the allowed downtime) takes about the allowed downtime whatever the cap; at a speed of
  its own it takes longer the higher the cap, which one scale of the former cannot fit: the lab's pre-copy stops
  with 1000 ms allowed took a median 73, 56, 81 and 187 ms at caps of 8, 16, 32 and 64 MiB/s. Compression stays
  CPU-bound.
- `contention`: how much slower pages move per runnable thread per CPU past one (the hosts' 1-minute load over
  their CPUs, `load_per_cpu`): past one per CPU the migration's threads wait for cores in turn. The prior, 0, slows
  nothing: whether a host's migrations are CPU-bound is the host's to show. The lab's fit 0.11: its migrations at a
  load of 6 and more on 2 CPUs took 1.58x what the other parameters fitted, 1.15x with it, and a lab collection
  calibrated like the others is 20% and 30% off on time with no migration of its own (25% and 33% without;
  `python -m training.few_shot --floor` and `--like-others`, 2026-12-07).

Fitted on all of the lab's migrations (498 on 2026-12-06) and scored on them, the first seven parameters (before
`stop_mib_s`) left a time MAPE of 27% where the first five left 39% (`tests/unit/ml/test_profiles.py` holds the
rules, `training.few_shot` the figures on migrations not calibrated on).

They are fitted by least squares on the log errors of time, downtime and data of completed migrations (the stop's
three, `downtime_scale`, `stop_ms` and `stop_mib_s`, then again on the downtime alone, so that the stop cannot pull
the rates the time depends on: few-shot k = 10 on the lab, 20 draws, downtime median APE 81% -> 72% with time,
data, recall and false alarms unchanged, 2026-12-06), with a
ridge toward the prior worth `PRIOR_WEIGHT` migrations, so a profile with few migrations stays near the physics
(the fit moves by about n / (n + PRIOR_WEIGHT)). Then per technique and target, the residuals log(actual /
fitted) over the calibration migrations give a shift of the median (their median: what the few parameters leave,
e.g. compression's CPU cost) and the split-conformal p10 and p90 around it, blended with the uncalibrated offsets
(no shift) with the same weight while the technique has few migrations.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from advisor.domain.model import Technique
from advisor.features.inputs import InputTable
from advisor.physics import DEFAULT_CONSTANTS, TECHNIQUES, AnalyticArrays, FloatArray, working_set_arrays

PARAMETERS: tuple[str, ...] = ("throughput", "round_overhead_ms", "downtime_scale", "sent_memory_factor", "stop_ms",
                               "compress_mib_s", "dirty_scale", "stop_mib_s", "contention")
PRIOR: Mapping[str, float] = {"throughput": 1.0, "round_overhead_ms": 0.0, "downtime_scale": 1.0,
                              "sent_memory_factor": 1.0, "stop_ms": 0.0, "compress_mib_s": 200.0, "dirty_scale": 1.0,
                              "stop_mib_s": 0.0, "contention": 0.0}
BOUNDS: Mapping[str, tuple[float, float]] = {"throughput": (0.3, 1.5), "round_overhead_ms": (0.0, 2000.0),
                                             "downtime_scale": (0.02, 20.0), "sent_memory_factor": (0.5, 8.0),
                                             "stop_ms": (0.0, 2000.0), "compress_mib_s": (2.0, 2000.0),
                                             "dirty_scale": (0.2, 3.0), "stop_mib_s": (0.0, 20_000.0),
                                             "contention": (0.0, 3.0)}
# How far a parameter may move for one unit of the ridge (log scale; the additive ones in their unit over this).
PRIOR_SPREAD: Mapping[str, float] = {"throughput": 0.5, "round_overhead_ms": 500.0, "downtime_scale": 1.5,
                                     "sent_memory_factor": 1.0, "stop_ms": 100.0, "compress_mib_s": 2.0,
                                     "dirty_scale": 0.7, "stop_mib_s": 1000.0, "contention": 0.5}
# Parameters that move additively (ms, MiB/s, a slope; the others are factors, which move in log space).
ADDITIVE: frozenset[str] = frozenset({"round_overhead_ms", "stop_ms", "stop_mib_s", "contention"})
PRIOR_WEIGHT = 5.0  # the prior counts as this many migrations
TARGETS: tuple[str, ...] = ("total_time_ms", "downtime_ms", "transferred_mib")
QUANTILES = (0.1, 0.9)
# The p10/p90 offsets (log actual/physics) of a profile the physics never saw: what leaving a whole profile out
# costs. Measured with `python -m training.few_shot --leave-out` (3,000 SNU migrations, the lab's 492 without its
# locked part, 2026-12-07, the nine parameters, resident memory read, a reading at page sampling's floor blind): the
# default physics on the lab, a profile calibrated on SNU predicting the lab, and one calibrated on the lab
# predicting SNU; actual/predicted p10 and p90 of time 0.91/3.06, 0.96/2.86, 0.41/1.18; downtime 0.12/16.35,
# 0.10/2.44, 0.06/5.98; data 0.74/1.51, 0.74/1.55, 0.54/1.26. Kept: the widest of the three.
# Residuals kept per technique and target: the most recent ones, so a profile's file stays bounded and its
# intervals follow what its hosts do now.
RESIDUALS_KEPT = 200
UNCALIBRATED_OFFSETS: Mapping[str, tuple[float, float]] = {
    "total_time_ms": (math.log(0.41), math.log(3.06)),
    "downtime_ms": (math.log(0.06), math.log(16.35)),
    "transferred_mib": (math.log(0.54), math.log(1.55)),
}


@dataclass(frozen=True)
class HostProfile:
    """A calibrated host profile: its parameters, the migrations they came from, and per technique and target the
    (low, high) interval offsets in log space. `version` is empty until stored."""

    name: str
    parameters: Mapping[str, float]
    migrations: int
    offsets: Mapping[str, Mapping[str, tuple[float, float, float]]]  # technique -> target -> (p10, shift, p90)
    version: str = ""
    created: str = ""
    residuals: Mapping[str, Mapping[str, tuple[float, ...]]] = field(default_factory=dict)  # technique -> target
    # The parameters the profile is shrunk toward while it has few migrations: the physics' defaults, or those of
    # the known profile `base` it was calibrated like (`calibrate(like=...)`).
    base: str = ""
    prior: Mapping[str, float] = field(default_factory=lambda: dict(PRIOR))

    def interval(self, technique: Technique, target: str) -> tuple[float, float, float]:
        """(low, shift, high) in log space: the median served is the physics times exp(shift)."""
        return self.offsets.get(str(technique), {}).get(target, left_out(target))


def left_out(target: str) -> tuple[float, float, float]:
    """The (low, shift, high) offsets of a profile left out: no shift, the intervals of UNCALIBRATED_OFFSETS."""
    low, high = UNCALIBRATED_OFFSETS[target]
    return low, 0.0, high


UNCALIBRATED_PARAMETERS: Mapping[str, float] = dict(PRIOR)


@dataclass(frozen=True)
class Observed:
    """What the calibration migrations measured, per row; NaN where not measured (downtime of an abort)."""

    total_time_ms: FloatArray
    downtime_ms: FloatArray
    transferred_mib: FloatArray
    completed: np.ndarray  # bool per row


def physics(table: InputTable, parameters: Mapping[str, float]) -> AnalyticArrays:
    """The physics with a profile's parameters: the working-set model (advisor.physics.working_set), the usable
    bandwidth times `throughput`, the first pass's estimate times `sent_memory_factor` (at most the RAM; measured
    non-zero or resident pages are sent as read), each pre-copy round `round_overhead_ms` longer, the stop scaled and
    `stop_ms` longer. A reading at page sampling's floor is blind (`InputTable.blind_at_floor`)."""
    table = table.blind_at_floor()
    code = np.array([TECHNIQUES.index(t) for t in table.techniques], dtype=np.int64)
    usable = usable_mib_s(table, parameters)
    configured = np.fmax(table.memory_configured_mib, table.memory_mib)  # NaN configured: memory in use
    estimate = np.minimum(table.first_pass_mib * parameters["sent_memory_factor"], configured)
    # the non-zero pages, or what QEMU holds resident, are sent as measured: only memory in use is scaled
    measured = ~np.isnan(table.nonzero_memory_mib)
    if table.resident_memory_mib is not None:
        measured |= ~np.isnan(table.resident_memory_mib)
    sent = np.where(measured, table.first_pass_mib, estimate)
    a = working_set_arrays(code, table.memory_mib, table.longest_working_set_mib, dirty_rate(table, parameters),
                           usable, table.max_downtime_ms,
                           nonzero_mib=sent)
    precopy = np.array([t.is_precopy for t in table.techniques])
    overhead = np.where(precopy, a.rounds * parameters["round_overhead_ms"], 0.0)
    # QEMU lifts the cap for the stop: the last pages go at the host's own speed where it is faster than the cap
    # (`stop_mib_s`; 0, the prior: not known, at the usable bandwidth). Compression stays CPU-bound.
    compress = np.array([t is Technique.PRECOPY_COMPRESS for t in table.techniques])
    stop_rate = np.where(compress, usable, np.maximum(usable, parameters["stop_mib_s"]))
    sending = (a.downtime_ms - DEFAULT_CONSTANTS.resume_ms) * usable / stop_rate + DEFAULT_CONSTANTS.resume_ms
    downtime = sending * parameters["downtime_scale"] + parameters["stop_ms"]
    return AnalyticArrays(a.total_time_ms + overhead - a.downtime_ms + downtime, downtime, a.transferred_mib,
                          a.converges, a.rounds)


def dirty_rate(table: InputTable, parameters: Mapping[str, float]) -> FloatArray:
    """How fast the guest dirties while it migrates: a measured rate times `dirty_scale`; a rate nothing measured
    (or measured blind) as the inputs take it, the link's, unscaled: the scale says how a host's guests slow down
    from what was measured, and shrinking the "as fast as the link" convention by it called blind `stress` runs
    converging that never did."""
    return np.asarray(np.where(table.dirty_rate_known, table.dirty_rate_mib_s * parameters["dirty_scale"],
                               table.dirty_rate_mib_s), dtype=np.float64)


def usable_mib_s(table: InputTable, parameters: Mapping[str, float]) -> FloatArray:
    """What the host moves per second on the wire: the usable bandwidth times `throughput`; for multi-thread
    compression at most what its threads compress (`compress_mib_s` of pages, at the compression ratio); both
    slowed on a host with more runnable threads than CPUs (`contention_factor`)."""
    usable = table.usable_mib_s * parameters["throughput"]
    compress = np.array([t is Technique.PRECOPY_COMPRESS for t in table.techniques])
    cpu = parameters["compress_mib_s"] * DEFAULT_CONSTANTS.compression_ratio
    moved = np.where(compress, np.minimum(usable, cpu), usable)
    return np.asarray(moved / contention_factor(table.load_per_cpu, parameters["contention"]), dtype=np.float64)


def contention_factor(load_per_cpu: FloatArray, contention: float) -> FloatArray:
    """How much slower the migration's threads move pages on a host with `load_per_cpu` runnable threads per CPU:
    1 up to one per CPU (each has a core), then 1 + `contention` per thread more (they wait for cores in turn). A
    load not measured (NaN) slows nothing: unknown is not taken as busy."""
    return np.asarray(1.0 + contention * np.fmax(np.nan_to_num(load_per_cpu, nan=0.0) - 1.0, 0.0), dtype=np.float64)


def _log_errors(predicted: AnalyticArrays, observed: Observed) -> dict[str, FloatArray]:
    """log(actual / predicted) per target; NaN where the actual is unknown or the migration did not complete."""
    out = {}
    for target in TARGETS:
        actual = np.where(observed.completed, getattr(observed, target), np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.log(np.maximum(actual, 1e-3) / np.maximum(getattr(predicted, target), 1e-3))
        out[target] = np.where(np.isfinite(actual) & (actual > 0), ratio, np.nan)
    return out


def fit_parameters(table: InputTable, observed: Observed, prior_weight: float = PRIOR_WEIGHT,
                   prior: Mapping[str, float] = PRIOR) -> dict[str, float]:
    """The parameters by least squares on the completed migrations' log errors, ridged toward `prior` (the
    physics' defaults, or the parameters of a known profile the host is like)."""
    if not observed.completed.any():
        return dict(prior)

    def fit(names: tuple[str, ...], targets: tuple[str, ...], fixed: Mapping[str, float],
            starts: tuple[Mapping[str, float], ...]) -> dict[str, float]:
        """The parameters `names` (the others as `fixed`) that best fit `targets`, from each start."""

        def unpack(x: FloatArray) -> dict[str, float]:
            return {**fixed, **dict(zip(names, (float(v) for v in x), strict=True))}

        def residuals(x: FloatArray) -> FloatArray:
            values, errors = unpack(x), _log_errors(physics(table, unpack(x)), observed)
            # a migration far off (log error beyond +-1.5, a factor 4.5) counts as that far: one outlier cannot drag
            parts = [np.clip(np.nan_to_num(errors[t], nan=0.0), -1.5, 1.5) for t in targets]
            ridge = [(values[n] - prior[n]) / PRIOR_SPREAD[n] if n in ADDITIVE
                     else math.log(values[n] / prior[n]) / PRIOR_SPREAD[n] for n in names]
            return np.concatenate([*parts, np.sqrt(prior_weight) * np.array(ridge, dtype=np.float64)])

        low, high = np.array([BOUNDS[n][0] for n in names]), np.array([BOUNDS[n][1] for n in names])
        best = min((levenberg_marquardt(residuals, np.clip(np.array([start[n] for n in names]), low, high), low, high)
                    for start in starts), key=lambda x: float(np.sum(residuals(x) ** 2)))
        return unpack(best)

    # First everything but the stop's own speed, on every target (the rounds make the loss a staircase in the
    # rates, and a fixed stop trades with a scaled one: several starts); then the stop alone on the downtime, so
    # that what QEMU's uncapped stop explains cannot pull the rates the time depends on.
    rest = tuple(p for p in PARAMETERS if p != "stop_mib_s")
    starts = (PRIOR, {**PRIOR, "throughput": 0.7, "round_overhead_ms": 100.0},
              {**PRIOR, "downtime_scale": 0.3, "stop_ms": 20.0}, {**PRIOR, "compress_mib_s": 20.0, "dirty_scale": 0.6})
    first = fit(rest, TARGETS, {"stop_mib_s": prior["stop_mib_s"]},
                starts if dict(prior) == dict(PRIOR) else (prior, *starts))
    stop = ("downtime_scale", "stop_ms", "stop_mib_s")
    return fit(stop, ("downtime_ms",), first,
               (first, {**first, "downtime_scale": 1.0, "stop_ms": 20.0, "stop_mib_s": 400.0}))


def levenberg_marquardt(residuals: Callable[[FloatArray], FloatArray], x: FloatArray, low: FloatArray,
                        high: FloatArray, iterations: int = 30) -> FloatArray:
    """Bounded least squares for a few parameters: damped Gauss-Newton steps on a finite-difference Jacobian whose
    relative step (5%) is large enough to see the rounds' steps, each step clipped into the bounds. (scipy's
    `least_squares` from the same starts settles in worse optima of this staircase loss: SNU physics left one
    workload out, downtime median APE 38% here against 64% with it, 2026-12-06.)"""
    r = residuals(x)
    damping = 1e-2
    for _ in range(iterations):
        h = np.maximum(np.abs(x) * 0.05, (high - low) * 0.01)
        jacobian = np.column_stack([(residuals(x + np.eye(len(x))[i] * h[i]) - r) / h[i] for i in range(len(x))])
        a, g = jacobian.T @ jacobian, jacobian.T @ r
        step = np.linalg.solve(a + damping * np.diag(np.diag(a) + 1e-9), -g)
        candidate = np.clip(x + step, low, high)
        r_new = residuals(candidate)
        if float(r_new @ r_new) < float(r @ r):
            x, r, damping = candidate, r_new, damping / 3
        else:
            damping *= 4
            if damping > 1e6:
                break
    return x


def conformal_offsets(errors: FloatArray) -> tuple[float, float, float] | None:
    """The (p10, median, p90) of `errors`, the outer two at split-conformal's finite-sample ranks; None if empty."""
    values = np.sort(errors[np.isfinite(errors)])
    n = len(values)
    if n == 0:
        return None
    low_rank = max(0, math.floor(QUANTILES[0] * (n + 1)) - 1)
    high_rank = min(n - 1, math.ceil(QUANTILES[1] * (n + 1)) - 1)
    return float(values[low_rank]), float(np.median(values)), float(values[high_rank])


def blend(own: tuple[float, float, float] | None, n: int, target: str, prior_weight: float
          ) -> tuple[float, float, float]:
    """A technique's (low, shift, high) offsets: its own while it has many migrations, a profile left out's (no
    shift) while it has few. The in-sample residuals of a fit are too narrow by about sqrt(n / (n - parameters)):
    the spread around the shift is widened by that."""
    low, _, high = left_out(target)
    if own is None:
        return low, 0.0, high
    widen = math.sqrt(n / (n - len(PARAMETERS))) if n > len(PARAMETERS) + 1 else 2.0
    w = n / (n + prior_weight)
    shift = w * own[1]
    own_low, own_high = own[1] + widen * (own[0] - own[1]), own[1] + widen * (own[2] - own[1])
    return (min(shift, w * own_low + (1 - w) * low), shift, max(shift, w * own_high + (1 - w) * high))


def intervals(table: InputTable, observed: Observed, parameters: Mapping[str, float], prior_weight: float = PRIOR_WEIGHT
              ) -> tuple[dict[str, dict[str, tuple[float, float, float]]], dict[str, dict[str, tuple[float, ...]]]]:
    """Per technique and target: the blended offsets and the residuals they came from."""
    errors = _log_errors(physics(table, parameters), observed)
    techniques = np.array([str(t) for t in table.techniques])
    offsets: dict[str, dict[str, tuple[float, float, float]]] = {}
    kept: dict[str, dict[str, tuple[float, ...]]] = {}
    for technique in TECHNIQUES:
        rows = techniques == str(technique)
        offsets[str(technique)], kept[str(technique)] = {}, {}
        for target in TARGETS:
            values = errors[target][rows]
            values = values[np.isfinite(values)]
            offsets[str(technique)][target] = blend(conformal_offsets(values), len(values), target, prior_weight)
            kept[str(technique)][target] = tuple(round(float(v), 4) for v in values)
    return offsets, kept


def unfitted(table: InputTable, observed: Observed, parameters: Mapping[str, float]) -> tuple[str, ...]:
    """The parameters the completed migrations say nothing of: moving one by its spread, either way, changes no
    target of theirs (compression's speed without a compressed migration, the dirty scale where no guest dirtied,
    every one without a completed migration)."""
    if not observed.completed.any():
        return PARAMETERS
    done = observed.completed
    base = physics(table, parameters)

    def same(name: str, value: float) -> bool:
        moved = physics(table, {**parameters, name: min(max(value, BOUNDS[name][0]), BOUNDS[name][1])})
        return all(np.allclose(getattr(moved, t)[done], getattr(base, t)[done], rtol=1e-9, atol=0.0, equal_nan=True)
                   for t in TARGETS)

    value, spread = parameters, PRIOR_SPREAD
    return tuple(n for n in PARAMETERS
                 if all(same(n, v) for v in ((value[n] - spread[n], value[n] + spread[n]) if n in ADDITIVE
                                             else (value[n] * math.exp(-spread[n]), value[n] * math.exp(spread[n])))))


def calibrate(name: str, table: InputTable, observed: Observed, prior_weight: float = PRIOR_WEIGHT,
              like: HostProfile | None = None) -> HostProfile:
    """A profile fitted from its executed migrations (rows of `table`, what happened in `observed`), its parameters
    shrunk while it has few toward the physics' defaults or, `like` given, toward that known profile's (a host like
    one already calibrated starts where that one is, not at textbook physics). A parameter they say nothing of
    (`unfitted`) is the prior's exactly, not where the fit's last step left it."""
    start = like_profile(name, like) if like is not None else uncalibrated(name)
    parameters = fit_parameters(table, observed, prior_weight, start.prior)
    parameters.update({p: start.prior[p] for p in unfitted(table, observed, parameters)})
    offsets, residuals = intervals(table, observed, parameters, prior_weight)
    return replace(start, parameters={k: round(v, 4) for k, v in parameters.items()}, migrations=len(table),
                   offsets=offsets, residuals=residuals)


def like_profile(name: str, base: HostProfile) -> HostProfile:
    """A profile of no migrations of its own: `base`'s parameters, and the intervals of a profile left out rather
    than `base`'s own. Another rig is not `base`'s: calibrated like the lab's other collections, the v2 collection's
    times fell in `base`'s intervals for 69% of its migrations (the aim is 70-90%) against 97% with a profile left
    out's, and fewer of its pre-copies that never converged were foreseen (50% against 61%; k = 0, `python -m
    training.few_shot --like-others` and docs/learning.md, 2026-12-07)."""
    return HostProfile(name, dict(base.parameters), 0, {}, base=base.name, prior=dict(base.parameters))


def uncalibrated(name: str) -> HostProfile:
    """A profile never calibrated: the physics' defaults and the intervals of a profile left out."""
    return HostProfile(name, dict(UNCALIBRATED_PARAMETERS), 0, {})


def updated(profile: HostProfile, table: InputTable, observed: Observed, prior_weight: float = PRIOR_WEIGHT
            ) -> HostProfile:
    """The profile after one more executed migration (one row), without a refit over all rows: each parameter
    moves toward what this migration says by 1 / (n + 1 + prior_weight) (a running mean in log space of the
    per-migration fit), and the migration's residual joins its technique's conformal set."""
    n = profile.migrations
    own = fit_parameters(table, observed, prior_weight, profile.prior)
    step = len(table) / (n + len(table) + prior_weight)
    parameters = {}
    for name in PARAMETERS:
        old, new = profile.parameters[name], own[name]
        if name in ADDITIVE:
            parameters[name] = round(old + step * (new - old), 4)
        else:
            parameters[name] = round(math.exp(math.log(old) + step * (math.log(new) - math.log(old))), 4)
    errors = _log_errors(physics(table, parameters), observed)
    residuals = {t: dict(v) for t, v in profile.residuals.items()}
    offsets = {t: dict(v) for t, v in profile.offsets.items()}
    for k, technique in enumerate(table.techniques):
        per = residuals.setdefault(str(technique), {})
        for target in TARGETS:
            value = float(errors[target][k])
            values = per.get(target, ())
            if math.isfinite(value):
                values = (*values, round(value, 4))[-RESIDUALS_KEPT:]
                per[target] = values
            arr = np.array(values, dtype=np.float64)
            offsets.setdefault(str(technique), {})[target] = blend(conformal_offsets(arr), len(arr), target,
                                                                   prior_weight)
    return replace(profile, parameters=parameters, migrations=n + len(table), offsets=offsets, residuals=residuals,
                   version="")


def observed_from(total_time_ms: Sequence[float], downtime_ms: Sequence[float], transferred_mib: Sequence[float],
                  completed: Sequence[bool]) -> Observed:
    return Observed(np.asarray(total_time_ms, dtype=np.float64), np.asarray(downtime_ms, dtype=np.float64),
                    np.asarray(transferred_mib, dtype=np.float64), np.asarray(completed, dtype=np.bool_))
