"""Anti-churn: what keeps successive plans from causing migration storms and ping-pong.

- a minimum gain per move (in the strategy's own unit, see each strategy);
- a per-VM cooldown after each move that grows with what the move cost (a VM whose migration took long is left
  alone longer), during which balance and consolidation do not move it;
- a cap on moves per plan (by default 2.5% of the VMs, at least one);
- no return: a VM never goes back to the host it left for `return_factor` times its cooldown (a drain may move a
  cooling VM, but not back where it came from).
`MoveHistory` is the memory across plans that these rules need: per VM, its last move.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from advisor.planning.engine.snapshot import NO_HOST, BoolArray, ClusterArrays, IntArray


@dataclass(frozen=True)
class AntiChurn:
    min_gain: float = 0.02
    cooldown_s: float = 1800.0
    cooldown_per_move_s: float = 60.0  # extra cooldown per second of the last move's predicted time
    return_factor: float = 2.0
    max_moves_fraction: float = 0.025
    max_moves: int = 0  # an absolute cap instead of the fraction

    def cap(self, n_vms: int) -> int:
        if self.max_moves > 0:
            return self.max_moves
        return max(1, math.ceil(self.max_moves_fraction * n_vms))

    def cooldown(self, move_s: float) -> float:
        return self.cooldown_s + self.cooldown_per_move_s * max(0.0, move_s)


@dataclass(frozen=True)
class LastMove:
    time_s: float
    source_id: str
    target_id: str
    duration_s: float  # predicted (or measured) time of the move


@dataclass(frozen=True)
class MoveHistory:
    """Each VM's last move, by VM id (ids survive snapshots; indexes do not)."""

    last: Mapping[str, LastMove] = field(default_factory=dict)

    def record(self, moves: Iterable[tuple[str, str, str, float]], now_s: float) -> MoveHistory:
        """After moves (vm id, source id, target id, duration s) started at `now_s`."""
        last = dict(self.last)
        for vm_id, source, target, duration in moves:
            last[vm_id] = LastMove(now_s, source, target, duration)
        return MoveHistory(last)

    def prune(self, now_s: float, churn: AntiChurn) -> MoveHistory:
        """Forget moves whose cooldown and no-return window are over."""
        keep = {v: m for v, m in self.last.items()
                if now_s < m.time_s + churn.cooldown(m.duration_s) * max(1.0, churn.return_factor)}
        return self if len(keep) == len(self.last) else MoveHistory(keep)

    def arrays(self, cluster: ClusterArrays, now_s: float, churn: AntiChurn) -> tuple[BoolArray, IntArray]:
        """(cooling: the VM may not move now, left: the host it may not return to, or -1) per VM."""
        cooling = np.zeros(cluster.n_vms, dtype=bool)
        left = np.full(cluster.n_vms, NO_HOST, dtype=np.int64)
        if not self.last:
            return cooling, left
        hosts = {h: k for k, h in enumerate(cluster.host_ids)}
        for vm_id, m in self.last.items():
            try:
                vm = cluster.vm_index(vm_id)
            except KeyError:
                continue
            window = churn.cooldown(m.duration_s)
            cooling[vm] = now_s < m.time_s + window
            if now_s < m.time_s + window * churn.return_factor:
                left[vm] = hosts.get(m.source_id, NO_HOST)
        return cooling, left
