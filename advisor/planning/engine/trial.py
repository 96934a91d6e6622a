"""Trial moves, for a strategy that may take back what it tries: consolidation empties a host whole or not at all,
and most of its trials fail (on Bitbrains day 8, 3,673 of 3,750 hosts, most after placing a VM or two).

A trial places its VMs without explaining them, since an explanation (every filter's rejections with their reasons,
the runners-up) costs more than choosing the target. A failed trial is undone as any moves (`Planner.undo`). A kept
one is rewound to the exact state before it (the values saved, not the moves subtracted again, which need not give
the same bits) and applied again move by move, each explained on the cluster as it was when the VM was placed: the
plan is, to the bit, the one applying each move at once would give.
"""

from __future__ import annotations

from collections.abc import Callable

from advisor.planning.engine.planner import Choice, MoveRecord, Planner
from advisor.planning.engine.weighers import Weights
from advisor.planning.engine.working import Before


class Trial:
    """The moves placed by one trial on a planner, in order."""

    def __init__(self, planner: Planner) -> None:
        self.planner = planner
        self._placed: list[tuple[Choice, Before]] = []

    def __len__(self) -> int:
        return len(self._placed)

    def place(self, vm: int, choice: Choice) -> None:
        """`Planner.apply` without the explanation: the move counts and changes the cluster as any."""
        p, target = self.planner, choice.host
        before = p.work.before(vm, target)
        p.records.append(MoveRecord(vm, before.source, target, 0.0, "", "", 0, 0, (), ()))
        p.work.move(vm, target)
        p.moved[vm] = True
        p.refused.pop(vm, None)
        self._placed.append((choice, before))

    def take_back(self) -> None:
        """Undo the last move placed (`Planner.undo` of one, kept in step with this trial)."""
        self._placed.pop()
        self.planner.undo(1)

    def keep(self, why: Callable[[int], str], weights: Weights) -> None:
        """Apply the trial's moves for good, each explained with `why(vm)` as the cluster is just before it."""
        p, placed = self.planner, self._placed
        del p.records[len(p.records) - len(placed):]
        for _, before in reversed(placed):
            p.work.restore(before)
            p.moved[before.vm] = False
        for choice, before in placed:
            p.apply(before.vm, choice, why(before.vm), 0.0, weights)
        self._placed = []
