"""The engine's default `MoveCosts`: the analytic pre-copy / post-copy model over arrays, with no learned part.

The formulas and constants are those of advisor.ml.analytic (re-implemented here because planning may not import
the models): pre-copy round by round with QEMU's stop rule (what is left fits the allowed downtime at the usable
bandwidth), auto-converge throttling from the second round, XBZRLE and compression shrinking what is re-sent,
post-copy sending each page once. The interval is the same sensitivity band (dirty rate 20% lower / 25% higher
with 10% less bandwidth), and the probability of converging is the share of those three cases that converge: a
coarse stand-in for the calibrated figures the learned model gives. The project plugs its learned model in behind
the same `MoveCosts` protocol (advisor.evaluation.costs.LearnedMoveCosts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from advisor.domain.model import Technique
from advisor.planning.engine.costs import TECHNIQUES, CostEstimates, CostRequest, select
from advisor.planning.engine.snapshot import BoolArray, FloatArray
from advisor.planning.technique import TechniqueRules


@dataclass(frozen=True)
class Constants:
    """advisor.ml.analytic.AnalyticConstants, value for value."""

    device_state_mib: float = 0.1
    resume_ms: float = 1.0
    max_rounds: int = 30
    xbzrle_resend_ratio: float = 0.5
    compression_ratio: float = 0.66
    postcopy_overhead_ratio: float = 1.01
    autoconverge_initial: float = 0.20
    autoconverge_increment: float = 0.10
    autoconverge_max: float = 0.99


def point(code: np.ndarray, memory: FloatArray, dirty: FloatArray, bandwidth: FloatArray,
          max_downtime_ms: float, c: Constants) -> tuple[FloatArray, FloatArray, FloatArray, BoolArray]:
    """(total ms, downtime ms, MiB sent, converges) per row; `code` indexes TECHNIQUES."""
    budget = bandwidth * max_downtime_ms / 1000.0
    compress = code == TECHNIQUES.index(Technique.PRECOPY_COMPRESS)
    xbzrle = code == TECHNIQUES.index(Technique.PRECOPY_XBZRLE)
    autoconverge = code == TECHNIQUES.index(Technique.PRECOPY_AUTOCONVERGE)
    post = code == TECHNIQUES.index(Technique.POSTCOPY)
    ratio_first = np.where(compress, c.compression_ratio, 1.0)
    ratio_resend = np.where(compress, c.compression_ratio, np.where(xbzrle, c.xbzrle_resend_ratio, 1.0))
    n = memory.shape[0]
    to_send, wire, elapsed, throttle = memory.copy(), np.zeros(n), np.zeros(n), np.zeros(n)
    converges = np.zeros(n, dtype=bool)
    active = ~post
    for r in range(1, c.max_rounds + 1):
        if not active.any():
            break
        sent = to_send * (ratio_first if r == 1 else ratio_resend)
        round_s = sent / bandwidth
        wire = np.where(active, wire + sent, wire)
        elapsed = np.where(active, elapsed + round_s, elapsed)
        if r >= 2:
            stepped = np.minimum(c.autoconverge_max,
                                 np.where(throttle == 0, c.autoconverge_initial, throttle + c.autoconverge_increment))
            throttle = np.where(active & autoconverge, stepped, throttle)
        dirtied = np.minimum(dirty * (1.0 - throttle) * round_s, memory)
        to_send = np.where(active, dirtied, to_send)
        done = active & (dirtied * ratio_resend <= budget)
        converges |= done
        active &= ~done
    last = to_send * ratio_resend + c.device_state_mib
    downtime = last / bandwidth * 1000.0 + c.resume_ms
    post_wire = memory * c.postcopy_overhead_ratio + c.device_state_mib
    total: FloatArray = np.where(post, post_wire / bandwidth * 1000.0, elapsed * 1000.0 + downtime)
    down: FloatArray = np.where(post, c.device_state_mib / bandwidth * 1000.0 + c.resume_ms, downtime)
    data: FloatArray = np.where(post, post_wire, wire + last)
    return total, down, data, converges | post


class AnalyticMoveCosts:
    """MoveCosts from the analytic model alone; `rules` choose among `rules.techniques`."""

    def __init__(self, rules: TechniqueRules | None = None, constants: Constants | None = None) -> None:
        self.rules = rules or TechniqueRules()
        self.constants = constants or Constants()

    @property
    def name(self) -> str:
        return "analytic 1.0.0"

    def estimate(self, request: CostRequest) -> CostEstimates:
        n, t = len(request), len(TECHNIQUES)
        code = np.repeat(np.arange(t), n)
        memory = np.tile(np.asarray(request.memory_mib, np.float64), t)
        dirty = np.tile(np.asarray(request.dirty_rate_mib_s, np.float64), t)
        bandwidth = np.tile(np.asarray(request.bandwidth_mib_s, np.float64), t)
        limit = request.max_downtime_ms or 300.0
        cases = [point(code, memory, d, b, limit, self.constants)
                 for d, b in ((dirty * 0.8, bandwidth), (dirty, bandwidth), (dirty * 1.25, bandwidth * 0.9))]

        def band(k: int) -> FloatArray:
            """(low, median, high) of the three cases, sorted (the downtime is a sawtooth in the dirty rate, so
            the middle case is not always the middle value), as advisor.ml.analytic does."""
            values = np.stack([case[k] for case in cases], axis=-1)
            banded: FloatArray = np.asarray(np.sort(values, axis=-1), dtype=np.float64).reshape(t, n, 3)
            return banded

        converged = np.stack([case[3] for case in cases]).reshape(3, t, n)
        return select(request, band(0), band(1), band(2), converged[1], converged.mean(axis=0), self.rules,
                      self.name)
