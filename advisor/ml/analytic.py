"""The analytic model of live migration (see README "Cost model" and the field guide, section 1).

Pre-copy is simulated round by round: round 0 sends all memory, each later round re-sends what the guest dirtied
during the previous one, and the migration stops when what is left fits the allowed downtime at the usable
bandwidth (QEMU's rule). Each pre-copy variant changes one thing:

- auto-converge throttles the vCPUs from the second round on, so the dirty rate falls by the throttle;
- XBZRLE sends re-dirtied pages as deltas, so later rounds carry a fraction of their bytes;
- multi-thread compression shrinks every byte sent.

Post-copy sends each page once after a short stop, so its time tracks memory over bandwidth.
The figures are point estimates; the interval is a sensitivity band (the same model with the dirty rate 20% lower
and 25% higher and the bandwidth 10% lower), not a calibrated interval -- the learned models give those.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from advisor.domain.model import Interval, MigrationCost, MigrationInputs, ModelRef, Technique

ANALYTIC_MODEL = ModelRef(name="analytic", version="1.0.0", interval_kind="sensitivity band")


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
class _Point:
    total_time_ms: float
    downtime_ms: float
    transferred_mib: float
    converges: bool
    rounds: int


def _precopy(inputs: MigrationInputs, technique: Technique, c: AnalyticConstants) -> _Point:
    bandwidth = inputs.usable_bandwidth_mib_s
    budget_mib = bandwidth * inputs.max_downtime_ms / 1000.0
    ratio_first = c.compression_ratio if technique is Technique.PRECOPY_COMPRESS else 1.0
    ratio_resend = {
        Technique.PRECOPY_COMPRESS: c.compression_ratio,
        Technique.PRECOPY_XBZRLE: c.xbzrle_resend_ratio,
    }.get(technique, 1.0)

    to_send = inputs.memory_mib  # logical MiB of guest memory in this round
    wire_mib = 0.0
    elapsed_s = 0.0
    throttle = 0.0
    converges = False
    rounds = 0
    for rounds in range(1, c.max_rounds + 1):
        ratio = ratio_first if rounds == 1 else ratio_resend
        round_s = to_send * ratio / bandwidth
        wire_mib += to_send * ratio
        elapsed_s += round_s
        if technique is Technique.PRECOPY_AUTOCONVERGE and rounds >= 2:
            step = c.autoconverge_initial if throttle == 0 else throttle + c.autoconverge_increment
            throttle = min(c.autoconverge_max, step)
        dirtied = min(inputs.dirty_rate_mib_s * (1.0 - throttle) * round_s, inputs.memory_mib)
        to_send = dirtied
        if dirtied * ratio_resend <= budget_mib:
            converges = True
            break
    last_mib = to_send * ratio_resend + c.device_state_mib
    downtime_ms = last_mib / bandwidth * 1000.0 + c.resume_ms
    wire_mib += last_mib
    return _Point(elapsed_s * 1000.0 + downtime_ms, downtime_ms, wire_mib, converges, rounds)


def _postcopy(inputs: MigrationInputs, c: AnalyticConstants) -> _Point:
    bandwidth = inputs.usable_bandwidth_mib_s
    wire_mib = inputs.memory_mib * c.postcopy_overhead_ratio + c.device_state_mib
    downtime_ms = c.device_state_mib / bandwidth * 1000.0 + c.resume_ms
    return _Point(wire_mib / bandwidth * 1000.0, downtime_ms, wire_mib, True, 1)


def _point(inputs: MigrationInputs, technique: Technique, c: AnalyticConstants) -> _Point:
    if technique is Technique.POSTCOPY:
        return _postcopy(inputs, c)
    return _precopy(inputs, technique, c)


def _validate(inputs: MigrationInputs) -> None:
    for name in ("memory_mib", "dirty_rate_mib_s", "bandwidth_mib_s", "max_bandwidth_mib_s", "max_downtime_ms"):
        value = getattr(inputs, name)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a finite non-negative number, got {value}")
    if inputs.usable_bandwidth_mib_s <= 0:
        raise ValueError("usable bandwidth must be positive")
    if inputs.memory_mib <= 0:
        raise ValueError("memory_mib must be positive")


def analytic_point(
    inputs: MigrationInputs, technique: Technique, constants: AnalyticConstants = DEFAULT_CONSTANTS
) -> tuple[float, float, float, bool]:
    """(total time ms, downtime ms, MiB on the wire, converges): the plain formulas, e.g. as features for a learner."""
    _validate(inputs)
    p = _point(inputs, technique, constants)
    return p.total_time_ms, p.downtime_ms, p.transferred_mib, p.converges


def predict_analytic(
    inputs: MigrationInputs, technique: Technique, constants: AnalyticConstants = DEFAULT_CONSTANTS
) -> MigrationCost:
    _validate(inputs)
    mid = _point(inputs, technique, constants)
    easy = _point(
        MigrationInputs(
            inputs.memory_mib, inputs.dirty_rate_mib_s * 0.8, inputs.bandwidth_mib_s, inputs.max_bandwidth_mib_s,
            inputs.max_downtime_ms,
        ),
        technique,
        constants,
    )
    hard = _point(
        MigrationInputs(
            inputs.memory_mib, inputs.dirty_rate_mib_s * 1.25, inputs.bandwidth_mib_s * 0.9,
            inputs.max_bandwidth_mib_s * 0.9, inputs.max_downtime_ms,
        ),
        technique,
        constants,
    )

    def band(attr: str) -> Interval:
        values = sorted((getattr(easy, attr), getattr(mid, attr), getattr(hard, attr)))
        return Interval(values[0], getattr(mid, attr), values[2]) if values[1] == getattr(mid, attr) else Interval(
            values[0], values[1], values[2]
        )

    notes: list[str] = []
    if technique.is_precopy:
        notes.append(f"{mid.rounds} pre-copy rounds")
        if not mid.converges:
            notes.append(
                f"does not converge within {constants.max_rounds} rounds at "
                f"{inputs.dirty_rate_mib_s:.1f} MiB/s dirtied vs {inputs.usable_bandwidth_mib_s:.1f} MiB/s; "
                "figures assume it is forced to complete then"
            )
    return MigrationCost(
        technique=technique,
        total_time_ms=band("total_time_ms"),
        downtime_ms=band("downtime_ms"),
        transferred_mib=band("transferred_mib"),
        converges=mid.converges,
        model=ANALYTIC_MODEL,
        notes=tuple(notes),
    )
