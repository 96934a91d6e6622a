"""The analytic model of live migration over arrays of rows (see docs/architecture.md, "Cost", and the field guide,
section 1): the one implementation, used by training and serving (the learned models' features), by plans (the
engine's default costs) and, through both, by the simulator's bridge.

Pre-copy is simulated round by round: round 0 sends all memory, each later round re-sends what the guest dirtied
during the previous one, and the migration stops when what is left fits the allowed downtime at the usable
bandwidth (QEMU's rule). QEMU checks that rule whenever what is pending falls below the budget, not only after a
whole round: where the working set is measured, a row whose whole rounds stop gaining settles as those syncs let
it (`_settle`); the learned models' features of schema v4 keep the check after whole rounds they were trained on
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

from dataclasses import dataclass, fields
from typing import Any

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
    its budget settles as QEMU's syncs below the budget let it (`_settle`)."""
    code = np.asarray(technique_code, dtype=np.int64)
    first_pass = np.asarray(first_pass_mib, dtype=np.float64)
    ceiling = np.asarray(rewritable_mib, dtype=np.float64)
    dirty = np.asarray(dirty_rate_mib_s, dtype=np.float64)
    usable = np.asarray(usable_mib_s, dtype=np.float64)
    budget = usable * np.asarray(max_downtime_ms, dtype=np.float64) / 1000.0
    is_autoconverge = code == TECHNIQUES.index(Technique.PRECOPY_AUTOCONVERGE)
    is_postcopy = code == TECHNIQUES.index(Technique.POSTCOPY)
    ratio_first, ratio_resend = send_ratios(code, c)

    n = first_pass.shape[0]
    to_send = first_pass.copy()
    wire = np.zeros(n)
    elapsed_s = np.zeros(n)
    converges = np.zeros(n, dtype=np.bool_)
    rounds = np.zeros(n, dtype=np.int64)
    # The rows still sending, compacted: most converge in a few rounds, so later rounds touch only the rest.
    row = np.flatnonzero(~is_postcopy)

    def rows(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return np.broadcast_to(a, (n,))[row]

    own = _Rows(row, to_send[row], wire[row], elapsed_s[row], np.zeros(row.shape[0]), rows(dirty), rows(ceiling),
                rows(usable), rows(budget), rows(ratio_first), rows(ratio_resend), rows(is_autoconverge),
                rows(np.asarray(sync_below_budget, dtype=np.bool_)))
    for r in range(1, c.max_rounds + 1):
        if own.row.shape[0] == 0:
            break
        sent = own.to_send * (own.ratio_first if r == 1 else own.ratio_resend)
        round_s = sent / own.usable
        own.wire += sent
        own.elapsed_s += round_s
        if r >= 2:
            stepped = np.minimum(
                c.autoconverge_max,
                np.where(own.throttle == 0, c.autoconverge_initial, own.throttle + c.autoconverge_increment),
            )
            own.throttle = np.where(own.is_autoconverge, stepped, own.throttle)
        pending = own.to_send
        own.to_send = np.minimum(own.dirty * (1.0 - own.throttle) * round_s, own.ceiling)
        done = own.to_send * own.ratio_resend <= own.budget
        if own.sync.any():
            done |= _settle(own, ~done & own.sync & ((own.to_send >= pending) | (r == c.max_rounds)))
        rounds[own.row] = r
        converges[own.row[done]] = True
        if done.any() or r == c.max_rounds:
            own.store(done | (r == c.max_rounds), to_send, wire, elapsed_s)
            own = own.kept(~done)
    # the rest in place: plans call this on 10^5 rows at once
    last = to_send * ratio_resend + c.device_state_mib
    downtime = last / usable * 1000.0 + c.resume_ms
    total = elapsed_s
    total *= 1000.0
    total += downtime
    wire += last

    # post-copy rows
    post_wire = first_pass * c.postcopy_overhead_ratio + c.device_state_mib
    np.copyto(total, post_wire / usable * 1000.0, where=is_postcopy)
    np.copyto(downtime, c.device_state_mib / usable * 1000.0 + c.resume_ms, where=is_postcopy)
    np.copyto(wire, post_wire, where=is_postcopy)
    rounds[is_postcopy] = 1
    return AnalyticArrays(total_time_ms=total, downtime_ms=downtime, transferred_mib=wire,
                          converges=converges | is_postcopy, rounds=rounds)


@dataclass
class _Rows:
    """The state of the pre-copy rows still sending, `row` their positions in the whole."""

    row: IntArray
    to_send: FloatArray
    wire: FloatArray
    elapsed_s: FloatArray
    throttle: FloatArray
    dirty: FloatArray
    ceiling: FloatArray
    usable: FloatArray
    budget: FloatArray
    ratio_first: FloatArray
    ratio_resend: FloatArray
    is_autoconverge: BoolArray
    sync: BoolArray

    def store(self, which: BoolArray, to_send: FloatArray, wire: FloatArray, elapsed_s: FloatArray) -> None:
        rows = self.row[which]
        to_send[rows], wire[rows], elapsed_s[rows] = self.to_send[which], self.wire[which], self.elapsed_s[which]

    def kept(self, which: BoolArray) -> _Rows:
        return _Rows(*(getattr(self, f.name)[which] for f in fields(self)))


def _settle(own: _Rows, stalled: BoolArray) -> BoolArray:
    """QEMU's stop rule between rounds, for the `stalled` rows (a whole round left at least as much to send as it
    sent, or the last round): QEMU syncs the dirty bitmap whenever what is pending falls below the budget, not only
    after a whole round (migration_iteration_run: below the threshold the pending estimate is made exact, which
    syncs). A guest rewriting a working set W at rate r (after the throttle) while the link clears L of it per
    second (its re-send ratio applied) then leaves a pending floor of W x (1 - L / r), where new writes hit clean
    pages as fast as the link cleans them: a floor below the budget is reached (the pending part decays toward it
    as exp(-r t / W)), and the stop sends the budget's worth. Returns the rows that settle, their time, data and
    what is left updated; a floor at or above the budget leaves the row to its rounds."""
    rate = own.dirty * (1.0 - own.throttle)
    link = own.usable / own.ratio_resend
    budget = own.budget / own.ratio_resend
    with np.errstate(divide="ignore", invalid="ignore"):
        floor = own.ceiling * (1.0 - link / rate)
        settles = stalled & (rate > 0) & (floor < budget) & (own.to_send > budget)
        seconds = np.where(settles, own.ceiling / rate * np.log1p((own.to_send - budget) / (budget - floor)), 0.0)
    own.elapsed_s += seconds
    own.wire += own.usable * seconds
    own.to_send = np.where(settles, budget, own.to_send)
    return np.asarray(settles)


def one_pass_ms(technique_code: IntArray, memory_mib: FloatArray, usable_mib_s: FloatArray,
                c: AnalyticConstants = DEFAULT_CONSTANTS) -> FloatArray:
    """How long the first pass over memory takes (the model's first round): no pre-copy ends sooner."""
    first, _ = send_ratios(np.asarray(technique_code, dtype=np.int64), c)
    ms: FloatArray = np.asarray(memory_mib, dtype=np.float64) * first / np.asarray(usable_mib_s, np.float64) * 1000.0
    return ms
