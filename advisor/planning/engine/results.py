"""What a strategy returns: the plan, its moves with their costs, order and explanations, and what it refused.

Everything here is a frozen value with host and VM ids (and their indexes into the snapshot), bounded in size
whatever the cluster's: an explanation keeps the best few alternatives and the rejections counted by filter, so a
plan fits any message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from advisor.domain.model import HostAssessment, MigrationCost, MigrationParameters, Move
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

    def to_move(self) -> Move:
        """The domain's Move, for recommendations and execution."""
        kept = tuple(HostAssessment(a.host_id, (), a.score, a.cpu_after, a.memory_after)
                     for a in self.explanation.alternatives)
        counts = tuple((f, n, h) for f, n, h, _ in self.explanation.rejections)
        return Move(self.vm_id, self.source_id, self.target_id, self.parameters, self.cost,
                    self.explanation.lines(), kept, counts, self.explanation.hosts_assessed)


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
