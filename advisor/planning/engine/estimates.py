"""The engine's answer for a batch of moves: per move the technique chosen and its predicted cost, as arrays
(`CostEstimates`), read back as the domain's cost, parameters and explanations."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from advisor.domain.model import TECHNIQUE_LABEL, Interval, MigrationCost, MigrationParameters, ModelRef, Technique
from advisor.physics import TECHNIQUES
from advisor.planning.engine.snapshot import BoolArray, FloatArray, IntArray
from advisor.planning.technique import COLD_BY_LIMITS, COLD_REFUSED

__all__ = ["CHOICES", "COLD", "CostEstimates"]

# What a move's technique indexes: the live techniques the models predict, then cold (its cost a sum of steps).
CHOICES = (*TECHNIQUES, Technique.COLD)
COLD = len(TECHNIQUES)


@dataclass(frozen=True)
class CostEstimates:
    """Per move: the chosen technique (index into CHOICES: a live technique of TECHNIQUES, or COLD), its
    predictions as (p10, median, p90) columns, and its parameters; `rank_ms` and `feasible` keep every live
    technique's standing for explanations."""

    model: str
    technique: IntArray
    total_ms: FloatArray  # (n, 3)
    downtime_ms: FloatArray  # (n, 3)
    data_mib: FloatArray  # (n, 3)
    converges: BoolArray
    p_converge: FloatArray
    meets_limits: BoolArray
    bandwidth_mib_s: FloatArray
    max_downtime_ms: FloatArray
    deadline_ms: FloatArray
    postcopy_after_ms: FloatArray  # NaN: never switch
    rank_ms: FloatArray  # (n, len(TECHNIQUES)), inf where not allowed
    feasible: BoolArray  # (n, len(TECHNIQUES))
    shutdown_timeout_ms: FloatArray  # a cold move's time for the guest to shut down; 0 for a live one
    cold_asked: BoolArray  # its VM asks for cold (its label): a cold move, or refused where the rules forbid cold

    def __len__(self) -> int:
        return int(self.technique.shape[0])

    def take(self, rows: IntArray | Sequence[int]) -> CostEstimates:
        index = np.asarray(rows, dtype=np.int64)
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return CostEstimates(**{k: v if k == "model" else v[index] for k, v in values.items()})

    @staticmethod
    def concat(parts: Sequence[CostEstimates]) -> CostEstimates:
        names = [f.name for f in fields(CostEstimates) if f.name != "model"]
        model = ", ".join(dict.fromkeys(p.model for p in parts))
        return CostEstimates(model, **{n: np.concatenate([getattr(p, n) for p in parts]) for n in names})

    def total_s(self, column: int = 1) -> FloatArray:
        seconds: FloatArray = self.total_ms[:, column] / 1000.0
        return seconds

    def cost(self, k: int, model: ModelRef | None = None) -> MigrationCost:
        """Row k as the domain's MigrationCost."""
        ref = model or ModelRef(self.model, "")
        # a cold move asked for meets the limits whatever they are, and says which it breaks
        broken = self.violation(k) if not self.meets_limits[k] or self.technique[k] == COLD else ""
        notes = (broken,) if broken else ()
        return MigrationCost(
            CHOICES[int(self.technique[k])], Interval(*self.total_ms[k].tolist()),
            Interval(*self.downtime_ms[k].tolist()), Interval(*self.data_mib[k].tolist()),
            bool(self.converges[k]), ref, notes,
        )

    def parameters(self, k: int, link_mib_s: float | None = None) -> MigrationParameters:
        """Row k's parameters; with `link_mib_s`, at that bandwidth instead of the one it was costed at (and its
        post-copy phase, if any, too)."""
        technique = CHOICES[int(self.technique[k])]
        after = float(self.postcopy_after_ms[k])
        may_postcopy = technique is Technique.POSTCOPY or not np.isnan(after)
        bandwidth = float(self.bandwidth_mib_s[k])
        # post-copy runs at the bandwidth its cost was predicted at (QEMU would otherwise lift the cap)
        postcopy = bandwidth if may_postcopy else 0.0
        if link_mib_s is not None:
            bandwidth, postcopy = link_mib_s, link_mib_s if postcopy else 0.0
        return MigrationParameters(
            technique=technique, bandwidth_mib_s=bandwidth,
            max_downtime_ms=float(self.max_downtime_ms[k]), postcopy_after_ms=None if np.isnan(after) else after,
            deadline_ms=float(self.deadline_ms[k]),
            compression_threads=4 if technique is Technique.PRECOPY_COMPRESS else 0,
            postcopy_bandwidth_mib_s=postcopy, shutdown_timeout_ms=float(self.shutdown_timeout_ms[k]),
        )

    def violation(self, k: int) -> str:
        """Which limit row k breaks, '' when none."""
        found = []
        if self.cold_asked[k] and self.technique[k] != COLD:
            found.append(COLD_REFUSED)
        if CHOICES[int(self.technique[k])].is_precopy and not self.converges[k]:
            found.append("predicted not to converge")
        if self.downtime_ms[k, 2] > self.max_downtime_ms[k]:
            found.append(f"downtime up to {self.downtime_ms[k, 2]:.0f} ms > limit {self.max_downtime_ms[k]:.0f} ms")
        # a live move's deadline is the one given, else 3 x its p90; a cold move's 0 when none was given
        if self.deadline_ms[k] > 0 and self.total_ms[k, 2] > self.deadline_ms[k]:
            found.append(f"total time up to {self.total_ms[k, 2] / 1000:.1f} s > deadline "
                         f"{self.deadline_ms[k] / 1000:.1f} s")
        return "; ".join(found)

    def describe(self, k: int) -> str:
        t, d, m = self.total_ms[k], self.downtime_ms[k], self.data_mib[k]
        return (f"{CHOICES[int(self.technique[k])]}: total {t[1] / 1000:.1f} s (p90 {t[2] / 1000:.1f} s), "
                f"downtime {d[1]:.0f} ms (p90 {d[2]:.0f} ms), {m[1]:.0f} MiB, converges with p "
                f"{self.p_converge[k]:.2f} ({self.model})")

    def why_technique(self, k: int) -> str:
        """Why row k's technique was chosen among the others, for explanations."""
        chosen = int(self.technique[k])
        text = self.describe(k)
        if chosen == COLD and not self.cold_asked[k]:
            return f"{text}: {COLD_BY_LIMITS} (the guest is off for the whole move)"
        if chosen == COLD:
            broken = self.violation(k)
            return (f"{text}: cold asked for by the VM's label {TECHNIQUE_LABEL}={Technique.COLD} (whatever the "
                    f"limits)" + (f"; {broken}" if broken else ""))
        if not self.meets_limits[k]:
            return f"no technique meets every limit; {text}: {self.violation(k)}"
        if not self.feasible[k, chosen]:  # a converging pre-copy weighed against post-copy (planning.technique)
            return (f"{text}: its p90 downtime is over the limit by less than post-copy's harm (exposure and "
                    f"slowdown), and QEMU's stop rule keeps a converging pre-copy's pause near the limit")
        ranks = np.where(self.feasible[k], self.rank_ms[k], np.inf)
        ranks[chosen] = np.inf
        runner = int(np.argmin(ranks))
        tail = (f"; next {TECHNIQUES[runner]} ranked {ranks[runner] / 1000:.1f} s" if np.isfinite(ranks[runner])
                else "; no other technique meets the limits")
        return f"{text}: the shortest (median + risk x spread) of the techniques meeting the limits{tail}"
