"""What a strategy returns: the plan, its moves with their costs, order and explanations, and what it refused.

Everything here is a frozen value with host and VM ids (and their indexes into the snapshot), bounded in size
whatever the cluster's: an explanation keeps the best few alternatives and the rejections counted by filter, so a
plan fits any message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from advisor.domain.assessments import HostAssessment
from advisor.domain.model import MigrationCost, MigrationInputs, MigrationParameters, Move
from advisor.domain.text import counted
from advisor.planning.engine.filters import Rejection
from advisor.planning.engine.snapshot import ClusterArrays


@dataclass(frozen=True)
class Alternative:
    """An eligible host that was not chosen (or the chosen one), with its score (lower wins)."""

    host_id: str
    score: float
    cpu_after: float
    memory_after: float
    detail: str


@dataclass(frozen=True)
class Explanation:
    why_vm: str
    why_host: str
    why_technique: str
    hosts_assessed: int
    hosts_eligible: int
    rejections: tuple[Rejection, ...]
    alternatives: tuple[Alternative, ...]  # the chosen host first, then the best others

    def lines(self) -> tuple[str, ...]:
        rejected = "; ".join(f"{f}: {n} (e.g. {h}: {r})" for f, n, h, r in self.rejections)
        return (f"vm: {self.why_vm}", f"host: {self.why_host}", f"technique: {self.why_technique}",
                *((f"rejected: {rejected}",) if rejected else ()))


def describe_inputs(inputs: MigrationInputs) -> str:
    """What a prediction was made from, with what was assumed."""
    if inputs.memory_source == "configured" or inputs.memory_configured_mib is None:
        memory = f"{inputs.memory_mib:.0f} MiB to copy (memory in use unknown: all of it)"
    else:
        memory = (f"{inputs.memory_mib:.0f} MiB in use of {inputs.memory_configured_mib:.0f} MiB "
                  f"({inputs.memory_source})")
    working_set = (f", working set {inputs.working_set_mib:.0f} MiB" if inputs.working_set_mib is not None
                   else ", working set not measured")
    deadline = f", deadline {inputs.deadline_ms / 1000:.0f} s" if inputs.deadline_ms else ""
    profile = f", hosts of profile {inputs.host_profile}" if inputs.host_profile else ""
    disks = ""
    if inputs.local_disk_used_mib:
        rate = inputs.disk_write_rate_mib_s
        disks = (f", local disks {inputs.local_disk_used_mib:.0f} MiB in use of {inputs.local_disk_size_mib:.0f} MiB "
                 + ("(write rate not measured)" if rate is None else f"written at {rate:.1f} MiB/s"))
    return (f"inputs: {memory}, dirty rate {inputs.dirty_rate_mib_s:.1f} MiB/s ({inputs.dirty_rate_source})"
            f"{working_set}, {inputs.usable_bandwidth_mib_s:.1f} MiB/s"
            f"{f' ({inputs.bandwidth_source})' if inputs.bandwidth_source else ''}, allowed downtime "
            f"{inputs.max_downtime_ms:.0f} ms{deadline}{profile}{disks}")


@dataclass(frozen=True)
class PlannedMove:
    vm_id: str
    source_id: str
    target_id: str
    vm: int
    source: int
    target: int
    cost: MigrationCost
    parameters: MigrationParameters
    p_converge: float
    benefit: float  # in the strategy's unit (`Plan.benefit_unit`)
    wave: int
    start_s: float
    end_s: float
    explanation: Explanation
    # The bandwidth its cost was predicted at: its share of the links in the schedule (it starts beside other
    # moves on its source or target), else the whole link its parameters carry (the executor gives the share).
    priced_mib_s: float

    def when(self) -> str:
        return f"wave {self.wave + 1}, starts about {self.start_s:.0f} s into the plan"

    def to_move(self, *reasons: str, inputs: MigrationInputs | None = None, cost: MigrationCost | None = None,
                parameters: MigrationParameters | None = None) -> Move:
        """The domain's Move, for recommendations and execution, with `reasons` after the explanation's, and the
        `cost` and `parameters` given instead of the plan's (as the use cases price and carry it)."""
        kept = tuple(HostAssessment(a.host_id, (), a.score, a.cpu_after, a.memory_after)
                     for a in self.explanation.alternatives)
        counts = tuple((f, n, h) for f, n, h, _ in self.explanation.rejections)
        return Move(self.vm_id, self.source_id, self.target_id, self.parameters if parameters is None else parameters,
                    self.cost if cost is None else cost, (*self.explanation.lines(), *reasons), kept, counts,
                    self.explanation.hosts_assessed, inputs)


@dataclass(frozen=True)
class Refusal:
    """A VM the plan wanted to move but did not. `postponed` means a later plan may do it (the cap, a deadline
    window); otherwise something forbids it now (no eligible host, a limit the move would break)."""

    vm_id: str
    source_id: str
    target_id: str  # "" when no target was found
    kind: str  # "no target", "limit" (downtime or deadline), "deadline" (of a drain), "cap", "min gain", "pinned"
    reason: str
    postponed: bool = False


@dataclass(frozen=True)
class PowerAdvice:
    """Consolidation's energy side: hosts to switch off now (and the power saved), hosts to switch on now, and
    which idle hosts to switch on next, in order, when the running hosts' CPU load passes `wake_above`."""

    switch_off: tuple[tuple[str, float], ...] = ()
    switch_on: tuple[str, ...] = ()
    wake_order: tuple[str, ...] = ()
    wake_above: float = 0.0
    load_after: float = 0.0  # CPU load of the hosts left running

    @property
    def saved_w(self) -> float:
        return sum(w for _, w in self.switch_off)


@dataclass(frozen=True)
class Plan:
    strategy: str
    parameters: Mapping[str, object]
    moves: tuple[PlannedMove, ...]  # in the order they start
    refused: tuple[Refusal, ...]
    summary: str
    cost_model: str
    benefit_unit: str
    duration_s: float  # when the last move ends under the concurrency limits (median predicted times)
    duration_p90_s: float  # the same with the p90 times
    waves: int  # batches under the concurrency limits (see schedule.py)
    hosts_assessed: int  # hosts the plan could consider
    after: ClusterArrays = field(repr=False)  # the cluster once every move is done
    dry_run: tuple[Refusal, ...] = ()  # drain: the VMs that cannot be evacuated, found before planning
    power: PowerAdvice | None = None

    def to_moves(self) -> tuple[Move, ...]:
        return tuple(m.to_move() for m in self.moves)

    def review_summary(self, held_back: Sequence[str], thresholds: Sequence[float]) -> str:
        """The summary a reviewer reads: what cannot go, what was refused (but for the cap and the minimum gain),
        the moves `held_back` for gaining less than their cluster's threshold (`thresholds`, the ones in use), the
        hosts to switch off and the migration time in all."""
        summary = self.summary
        if self.dry_run:
            summary += " Cannot be evacuated: " + "; ".join(f"{r.vm_id} ({r.reason})" for r in self.dry_run[:10]) + "."
        refused = [r for r in self.refused if r.kind not in ("cap", "min gain")]
        if refused and self.strategy != "evacuate":  # an evacuation's summary names every one already
            summary += f" Refused: {counted(len(refused), 'VM')}, e.g. " + "; ".join(
                f"{r.vm_id} ({r.kind}: {r.reason})" for r in refused[:3])
        if held_back:
            limit = (f"the cluster's threshold {thresholds[0]:g}x" if len(thresholds) == 1 else
                     f"their cluster's threshold ({'/'.join(f'{t:g}' for t in thresholds)}x)")
            held = len(set(held_back))
            summary += (f" {counted(held, 'move')} gaining less than {limit} their cost "
                        f"{'was' if held == 1 else 'were'} not proposed.")
        if self.power is not None and self.power.switch_off:
            summary += (f" Switch off {counted(len(self.power.switch_off), 'host')} once empty "
                        f"({self.power.saved_w:.0f} W).")
        total_s = sum(m.cost.total_time_ms.median for m in self.moves) / 1000
        return summary + (f" Predicted migration time in all: {total_s:.0f} s." if self.moves else "")
