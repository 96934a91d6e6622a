"""Trace-driven replay of CloudSim 3.0.3's power-aware data centre (PowerDatacenter + PowerHost), in numpy.

Event structure, as CloudSim's: VMs are created at t = 0 (`Policy.initial_placement`); periodic updates
follow at 0.1 + k x 300 s (cloudlets are submitted at 0.1 s) while before the horizon; each one recomputes every
host, accounts the frame since the previous update, removes VMs whose request is 0, records utilisation history
and asks the policy. Migrations end at start + migration time; at each end there is an update before (which
accounts the frame) and one after the VMs land (which only replaces the state at that instant). A VM's request
is its trace value linearly interpolated at the update time and held until the next update.

Energy per host and frame is 0 if the host was idle at the frame's start, else the trapezoid of P(u) between the
frame's ends; SLATAH counts the time active hosts spend with used < requested MIPS; PDM the MIPS-seconds a
migrating VM loses on its source over all MIPS-seconds requested (see metrics.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from advisor.simulation.allocation import IN, NORMAL, OUT, allocate
from advisor.simulation.arrays import BoolArray, FloatArray, IntArray, frozen
from advisor.simulation.datacenter import Datacenter
from advisor.simulation.interface import InFlightMigration, Migration, Policy, Snapshot
from advisor.simulation.metrics import Accumulator, SimulationResult
from advisor.simulation.migration import MigrationTimeModel, cloudsim_migration_time
from advisor.simulation.traces import Trace

Progress = Callable[[int, int], None]


class SimulationError(RuntimeError):
    """A policy or model broke the simulator's contract (message says which and how)."""


class NoHostError(SimulationError):
    """The initial placement found no host (-1) for some VMs: too few hosts for the trace, not a broken policy."""


@dataclass(frozen=True)
class SimulationConfig:
    first_update_s: float = 0.1  # CloudSim submits cloudlets 0.1 s after creating the VMs
    horizon_s: float | None = None  # default: the trace's samples x interval (86,400 s for a day)
    remove_idle_vms: bool = True  # CloudSim's getCompletedVms: a VM requesting 0 MIPS at an update leaves
    history_length: int = 30  # PowerVm.HISTORY_LENGTH
    migration_time: MigrationTimeModel = cloudsim_migration_time


@dataclass(frozen=True)
class _HostState:
    used: FloatArray
    requested: FloatArray
    res_host: IntArray
    res_vm: IntArray
    res_kind: IntArray
    res_alloc: FloatArray


class Simulation:
    """One run of one policy over one trace; `run()` returns the metrics."""

    def __init__(self, trace: Trace, datacenter: Datacenter, policy: Policy, config: SimulationConfig | None = None):
        self.trace, self.dc, self.policy = trace, datacenter, policy
        self.config = config or SimulationConfig()
        n = trace.n_vms
        self.vm_pes = np.asarray(trace.vm_pes)
        self.vm_total = np.asarray(trace.vm_mips) * self.vm_pes
        self.vm_host = np.full(n, -1, dtype=np.int64)
        self.vm_seq = np.zeros(n, dtype=np.int64)
        self.seq = 0
        self.flights: list[InFlightMigration] = []
        self.flight_seq: list[int] = []
        self.history = np.zeros((n, self.config.history_length))
        self.history_len = 0
        self.last_t = 0.0
        self.u = np.zeros(n)
        self.req_total = np.zeros(n)
        self.acc = Accumulator(datacenter)
        empty_i, empty_f = np.zeros(0, dtype=np.int64), np.zeros(0)
        self.state = _HostState(
            np.zeros(datacenter.n_hosts), np.zeros(datacenter.n_hosts), empty_i, empty_i, empty_i, empty_f
        )
        self.vm_alloc, self.vm_out, self.vm_present = np.zeros(n), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        self.has_state = False
        self.updates = 0

    # --- state -------------------------------------------------------------------------------------------------

    def _utilization_at(self, t: float) -> FloatArray:
        """UtilizationModelPlanetLabInMemory.getUtilization, operation for operation."""
        data, interval = self.trace.utilization, self.trace.interval_s
        if math.fmod(t, interval) == 0:
            row: FloatArray = data[int(t) // int(interval)].copy()
            return row
        t1, t2 = math.floor(t / interval), math.ceil(t / interval)
        u1, u2 = data[t1], data[t2]
        delta = (u2 - u1) / ((t2 - t1) * interval)
        value: FloatArray = u1 + delta * (t - t1 * interval)
        return value

    def _migrating(self) -> BoolArray:
        mask = np.zeros(self.trace.n_vms, dtype=bool)
        for f in self.flights:
            mask[f.vm] = True
        return mask

    def _compute(self, t: float) -> None:
        """Requests at t, then every host's allocation (CloudSim's updateVmsProcessing on all hosts)."""
        self.u = self._utilization_at(t)
        req_pe = self.u * self.vm_total / self.vm_pes
        self.req_total = np.where(self.vm_pes == 1, req_pe, req_pe * self.vm_pes)
        primary = np.flatnonzero(self.vm_host >= 0)
        migrating = self._migrating()
        res_host = np.concatenate([self.vm_host[primary], [f.target for f in self.flights]]).astype(np.int64)
        res_vm = np.concatenate([primary, [f.vm for f in self.flights]]).astype(np.int64)
        res_kind = np.concatenate([np.where(migrating[primary], OUT, NORMAL), np.full(len(self.flights), IN)])
        res_seq = np.concatenate([self.vm_seq[primary], self.flight_seq]).astype(np.int64)
        # vmList order: by host, then by when the copy joined it (one stable sort on a combined key: faster than
        # np.lexsort on two keys, and the same order)
        order = np.argsort(res_host * (self.seq + 1) + res_seq, kind="stable")
        res_host, res_vm, res_kind = res_host[order], res_vm[order], res_kind[order].astype(np.int64)
        alloc = allocate(
            res_host,
            res_kind,
            req_pe[res_vm],
            self.vm_pes[res_vm],
            np.asarray(self.dc.pe_mips),
            np.asarray(self.dc.total_mips),
        )
        self.state = _HostState(alloc.host_used, alloc.host_requested, res_host, res_vm, res_kind, alloc.allocated)
        primary_res = res_kind != IN
        self.vm_alloc = np.zeros(self.trace.n_vms)
        self.vm_alloc[res_vm[primary_res]] = alloc.allocated[primary_res]
        self.vm_out = migrating
        self.vm_present = self.vm_host >= 0

    def _update(self, t: float, remove: bool) -> None:
        """Account the frame since the last update with the state at its start, then compute the state at t."""
        dt = t - self.last_t
        hosts, alloc, req, out, present = self.state, self.vm_alloc, self.req_total, self.vm_out, self.vm_present
        self._compute(t)
        if dt > 0:
            self.acc.frame(
                dt, hosts.used, self.state.used, hosts.requested, alloc, req, out, present, sla=self.has_state
            )
        self.has_state = True
        self.last_t = t
        if remove and self.config.remove_idle_vms:
            idle = (self.vm_host >= 0) & (self.req_total == 0) & ~self._migrating()
            if idle.any():
                self.acc.vms_removed += int(idle.sum())
                self.vm_host[idle] = -1
                self.vm_present = self.vm_host >= 0
                s = self.state
                keep = ~idle[s.res_vm]
                self.state = _HostState(
                    s.used, s.requested, s.res_host[keep], s.res_vm[keep], s.res_kind[keep], s.res_alloc[keep]
                )

    # --- migrations --------------------------------------------------------------------------------------------

    def _start(self, t: float, migrations: Sequence[Migration]) -> None:
        if not migrations:
            return
        busy = self._migrating()
        vms = np.array([m.vm for m in migrations], dtype=np.int64)
        targets = np.array([m.target for m in migrations], dtype=np.int64)
        for m in migrations:
            if not (0 <= m.vm < self.trace.n_vms and 0 <= m.target < self.dc.n_hosts):
                raise SimulationError(f"{self.policy.name}: migration {m} is out of range")
            if self.vm_host[m.vm] < 0 or busy[m.vm] or self.vm_host[m.vm] == m.target:
                raise SimulationError(
                    f"{self.policy.name}: VM {m.vm} cannot move to host {m.target} now "
                    f"(host {self.vm_host[m.vm]}, migrating {bool(busy[m.vm])})"
                )
        memory = self.trace.memory_mb
        ram = (
            np.asarray(self.trace.vm_ram_mb)
            if memory is None
            else memory[min(int(t // self.trace.interval_s), memory.shape[0] - 1)]
        )[vms]
        seconds = np.asarray(
            self.config.migration_time(ram, self.u[vms], np.asarray(self.dc.bw_mbit_s)[targets]), dtype=np.float64
        )
        if seconds.shape != vms.shape or not (np.isfinite(seconds).all() and (seconds > 0).all()):
            raise SimulationError("migration-time model must return one positive, finite time per migration")
        for vm, target, duration in zip(vms.tolist(), targets.tolist(), seconds.tolist(), strict=True):
            self.seq += 1
            self.flights.append(InFlightMigration(vm, int(self.vm_host[vm]), target, t, t + duration))
            self.flight_seq.append(self.seq)
        self.acc.migrations += len(migrations)
        self.acc.migration_s += float(seconds.sum())
        self.acc.repeated_migrations += len(migrations) - len(set(vms.tolist()))
        self._update(t, remove=False)

    def _complete(self, end: float) -> None:
        if end > self.last_t:
            self._update(end, remove=True)
        keep: list[int] = []
        for i, f in enumerate(self.flights):
            if f.end_s == end:
                self.seq += 1
                self.vm_host[f.vm] = f.target
                self.vm_seq[f.vm] = self.seq
            else:
                keep.append(i)
        self.flights = [self.flights[i] for i in keep]
        self.flight_seq = [self.flight_seq[i] for i in keep]
        self._update(end, remove=True)

    # --- policy ------------------------------------------------------------------------------------------------

    def _snapshot(self, t: float, step: int, instantiating: bool = False) -> Snapshot:
        s = self.state
        requested = self.vm_total.copy() if instantiating else np.where(self.vm_host >= 0, self.req_total, 0.0)
        return Snapshot(
            time_s=t,
            step=step,
            interval_s=self.trace.interval_s,
            datacenter=self.dc,
            vm_mips=self.trace.vm_mips,
            vm_pes=self.trace.vm_pes,
            vm_ram_mb=self.trace.vm_ram_mb,
            vm_bw_mbit_s=self.trace.vm_bw_mbit_s,
            vm_host=frozen(self.vm_host.copy()),
            vm_utilization=frozen(self.u.copy()),
            vm_requested_mips=frozen(requested),
            vm_history=frozen(self.history),
            history_len=self.history_len,
            vm_migrating=frozen(self._migrating()),
            in_flight=tuple(self.flights),
            residency_host=frozen(s.res_host),
            residency_vm=frozen(s.res_vm),
            residency_kind=frozen(s.res_kind),
            residency_allocated_mips=frozen(s.res_alloc),
            host_used_mips=frozen(s.used.copy()),
            host_requested_mips=frozen(s.requested.copy()),
            instantiating=instantiating,
            migration_time=self.config.migration_time,
            host_violation_s=frozen(self.acc.host_violation_s.copy()),
            vm_migration_loss_mips_s=frozen(self.acc.vm_migration_loss_mips_s.copy()),
        )

    def _place_initial(self) -> None:
        hosts = np.asarray(self.policy.initial_placement(self._snapshot(0.0, 0, instantiating=True)))
        if hosts.shape != (self.trace.n_vms,):
            raise SimulationError(f"{self.policy.name}: initial placement must give one host per VM")
        wrong = np.flatnonzero((hosts < -1) | (hosts >= self.dc.n_hosts))
        if wrong.size:
            raise SimulationError(f"{self.policy.name}: initial placement gave host {hosts[wrong[0]]} to VM {wrong[0]}")
        unplaced = np.flatnonzero(hosts == -1)
        if unplaced.size:
            raise NoHostError(
                f"{self.policy.name}: no host for {unplaced.size} VMs at t=0 (first: VM "
                f"{unplaced[0]}, {self.vm_total[unplaced[0]]:.0f} MIPS)"
            )
        for vm in range(self.trace.n_vms):
            self.seq += 1
            self.vm_seq[vm] = self.seq
        self.vm_host = hosts.astype(np.int64)

    # --- run ---------------------------------------------------------------------------------------------------

    def run(self, progress: Progress | None = None) -> SimulationResult:
        started = time.perf_counter()
        interval = self.trace.interval_s
        horizon = self.config.horizon_s if self.config.horizon_s is not None else self.trace.duration_s
        total_updates = max(0, math.ceil((horizon - self.config.first_update_s) / interval) - 1)
        self._place_initial()
        t = self.config.first_update_s + interval
        while True:
            while self.flights:
                end = min(f.end_s for f in self.flights)
                if end > t or end >= horizon:
                    break
                self._complete(end)
            if t >= horizon:
                break
            self.updates += 1
            self._update(t, remove=True)
            self.history = np.concatenate([self.u[:, None], self.history[:, :-1]], axis=1)
            self.history_len = min(self.history_len + 1, self.config.history_length)
            self.acc.observe(self.state.used, self.vm_host, np.asarray(self.trace.vm_ram_mb))
            self._start(t, self.policy.decide(self._snapshot(t, self.updates)))
            if progress is not None:
                progress(self.updates, total_updates)
            t = t + interval
        return self.acc.result(self.policy.name, self.trace, self.updates, time.perf_counter() - started)


def simulate(
    trace: Trace,
    datacenter: Datacenter,
    policy: Policy,
    config: SimulationConfig | None = None,
    progress: Progress | None = None,
) -> SimulationResult:
    """Run one policy over one trace."""
    return Simulation(trace, datacenter, policy, config).run(progress)
