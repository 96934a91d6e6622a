"""What the `advisor` policy's plans predicted, kept beside what the simulator then measured on the same hosts.

Relief (the balance plan) predicts, per host it relieves, the SLA seconds it expects over the next interval
before and after its moves: the interval times the probability that the host's CPU exceeds its capacity, its load
taken as normal around the forecast with its VMs' variance (advisor.planning.engine.overload, as relief ranks its
moves). Their difference is what the plan predicts it saves on those hosts over that interval. The simulator
measures each host's SLA time (`Snapshot.host_violation_s`); the ledger reads, on the same hosts, the seconds
measured in the interval before the plan and in the interval after it (until the next update), and settles a plan
only once its after-interval is measured, so both sides cover the same plans. The measured change (before -
after) is not the plan's saving (that would need a counterfactual run): the load moves too, which is what the
forecast is about.

Migration cost: the plans' predicted median migration times (learned model, each move at the share of the links
the plan's schedule starts it with), summed over the moves started, beside the simulator's migration seconds; and
what the migrations cost the guests as the simulator measured it (PDM's numerator: the MIPS-seconds a VM is denied
while it migrates out), split by the strategy that started each move, up to the last update.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from advisor.planning.engine.overload import OVERLOAD, overload_probability, vm_variance
from advisor.planning.engine.results import Plan
from advisor.planning.engine.snapshot import ClusterArrays, host_sums
from advisor.simulation import Snapshot
from advisor.simulation.arrays import FloatArray, IntArray


@dataclass
class _Pending:
    hosts: IntArray
    at_plan: FloatArray  # their measured SLA seconds so far, when the plan was made
    measured_before_s: float
    predicted_before: FloatArray  # per host, SLA seconds forecast over the next interval without the moves
    predicted_after: FloatArray  # ... with them


@dataclass
class Ledger:
    relieved_hosts: int = 0  # relieved host-intervals settled
    predicted_over_before_s: float = 0.0  # SLA seconds forecast over the next interval without the plan's moves
    predicted_over_after_s: float = 0.0  # ... with them
    measured_before_s: float = 0.0  # SLA seconds measured on the same hosts in the interval before the plan
    measured_after_s: float = 0.0  # ... and in the interval after it
    predicted_migration_s: float = 0.0  # every move started, relief and consolidation
    loss_mips_s: dict[str, float] = field(default_factory=dict)  # measured PDM numerator, by strategy
    _flights: dict[int, str] = field(default_factory=dict, repr=False)  # simulator VM -> strategy moving it
    _loss_seen: FloatArray | None = field(default=None, repr=False)  # per VM, at the last update
    _pending: _Pending | None = field(default=None, repr=False)
    _previous: FloatArray | None = field(default=None, repr=False)  # SLA seconds per host at the update before
    _last: FloatArray | None = field(default=None, repr=False)  # ... at this update

    @property
    def predicted_saved_s(self) -> float:
        return self.predicted_over_before_s - self.predicted_over_after_s

    def observe(self, snapshot: Snapshot) -> None:
        """At each update, before deciding: settle the last relief plan with what was measured since."""
        now = np.asarray(snapshot.host_violation_s, dtype=np.float64)
        p = self._pending
        if p is not None:
            self.relieved_hosts += p.hosts.shape[0]
            self.predicted_over_before_s += float(p.predicted_before.sum())
            self.predicted_over_after_s += float(p.predicted_after.sum())
            self.measured_before_s += p.measured_before_s
            self.measured_after_s += float((now[p.hosts] - p.at_plan).sum())
        self._pending = None
        self._previous, self._last = self._last, now
        self._settle_loss(snapshot)

    def _settle_loss(self, snapshot: Snapshot) -> None:
        """Add what each VM in flight lost since the last update to the strategy that moved it; forget the VMs
        that have landed."""
        loss = np.asarray(snapshot.vm_migration_loss_mips_s, dtype=np.float64)
        if loss.shape[0] == 0:
            return
        if self._loss_seen is not None and self._flights:
            delta = loss - self._loss_seen
            for vm, strategy in self._flights.items():
                self.loss_mips_s[strategy] = self.loss_mips_s.get(strategy, 0.0) + float(delta[vm])
            migrating = np.asarray(snapshot.vm_migrating)
            self._flights = {vm: s for vm, s in self._flights.items() if migrating[vm]}
        self._loss_seen = loss

    def relief(self, snapshot: Snapshot, before: ClusterArrays, plan: Plan) -> None:
        """Record what a relief plan predicts for the hosts it relieves (`before`: the cluster it planned on)."""
        hosts = np.unique(np.array([m.source for m in plan.moves], dtype=np.int64))
        now = self._last
        if hosts.size == 0 or now is None or now.shape[0] == 0:
            return
        earlier = self._previous[hosts] if self._previous is not None else np.zeros(hosts.size)
        over_before, over_after = (snapshot.interval_s * overload_probability(
            c.loads.host_cpu[hosts], host_sums(c.n_hosts, c.loads.vm_host, vm_variance(c))[hosts],
            c.host_cores[hosts], OVERLOAD) for c in (before, plan.after))
        self._pending = _Pending(hosts, now[hosts].copy(), float((now[hosts] - earlier).sum()), over_before, over_after)

    def moves(self, plan: Plan, vms: Sequence[int] | None = None) -> None:
        """The plan's moves started; `vms`: the simulator's index of each move's VM (for the measured loss)."""
        self.predicted_migration_s += sum(m.cost.total_time_ms.median for m in plan.moves) / 1000.0
        if vms is not None:
            self.loss_mips_s.setdefault(plan.strategy, 0.0)
            self._flights.update((int(vm), plan.strategy) for vm in vms)

    def as_dict(self) -> dict[str, float]:
        return {"relieved_hosts": self.relieved_hosts, "predicted_over_before_s": self.predicted_over_before_s,
                "predicted_over_after_s": self.predicted_over_after_s, "predicted_saved_s": self.predicted_saved_s,
                "measured_before_s": self.measured_before_s, "measured_after_s": self.measured_after_s,
                "predicted_migration_s": self.predicted_migration_s,
                **{f"{strategy}_loss_mips_s": loss for strategy, loss in self.loss_mips_s.items()}}
