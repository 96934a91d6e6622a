"""Energy, SLATAH and PDM on tiny scenarios computed by hand, through the whole engine."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from advisor.simulation.engine import NoHostError, SimulationConfig, SimulationError, simulate
from advisor.simulation.interface import Migration, Snapshot

from .helpers import SMALL, datacenter, trace


class Scripted:
    """Fixed initial placement, then the migrations listed per step."""

    name = "scripted"

    def __init__(self, hosts: Sequence[int], moves: dict[int, list[Migration]] | None = None) -> None:
        self.hosts, self.moves = np.array(hosts, dtype=np.int64), moves or {}
        self.snapshots: list[Snapshot] = []

    def initial_placement(self, snapshot: Snapshot) -> np.ndarray:
        return self.hosts

    def decide(self, snapshot: Snapshot) -> Sequence[Migration]:
        self.snapshots.append(snapshot)
        return self.moves.get(snapshot.step, [])


def power(u: float) -> float:  # the linear 100-200 W test host
    return 100 + 100 * u


def test_one_migration_by_hand():
    # Two 1000-MIPS hosts. VM 0 (1000 MIPS) at 50 %, VM 1 (500 MIPS, 100 MB) at 40 %, both on host 0.
    # Updates at 300.1, 600.1, 900.1 (the horizon is 1200 s). At 300.1 VM 1 moves to host 1: 100 MB at
    # 62.5 MB/s = 1.6 s, during which host 0 still burns VM 1's 200 MIPS and host 1 spends 10 % of it.
    assert (200 * 0.9) / 0.9 == 200  # so host 0 is not violating while VM 1 migrates out
    tr = trace([[50] * 4, [40] * 4], [1000, 500], [1000, 100])
    policy = Scripted([0, 0], {1: [Migration(1, 1)]})
    r = simulate(tr, datacenter([SMALL, SMALL]), policy)
    end = 300.1 + 100 / 62.5
    dt1, dt2, dt3 = end - 300.1, 600.1 - end, 300.0
    energy_ws = (power(0.7) + power(0.02)) * dt1 + (power(0.5) + power(0.2)) * (dt2 + dt3)
    assert r.energy_kwh == pytest.approx(energy_ws / 3.6e6, rel=1e-12)
    assert r.migrations == 1
    assert r.slatah == pytest.approx(dt1 / (2 * (dt1 + dt2 + dt3)), rel=1e-9)  # host 1 while VM 1 arrives
    assert r.pdm == pytest.approx(20 * dt1 / (700 * (dt1 + dt2 + dt3)), rel=1e-9)  # 10 % of 200 MIPS lost
    assert r.slav == pytest.approx(r.slatah * r.pdm)
    assert r.esv == pytest.approx(r.energy_kwh * r.slav)
    assert r.updates == 3
    assert [s.time_s for s in policy.snapshots] == [300.1, 600.1, 900.1]
    assert r.migration_s == pytest.approx(dt1)
    # what SLATAH sums, per host, as the policy sees it: nothing at the migration's start, host 1's dt1 after it
    assert policy.snapshots[0].host_violation_s.tolist() == [0.0, 0.0]
    assert policy.snapshots[1].host_violation_s.tolist() == pytest.approx([0.0, dt1])
    # and what PDM sums, per VM: VM 1's 20 MIPS for dt1, once it has moved
    assert policy.snapshots[0].vm_migration_loss_mips_s.tolist() == [0.0, 0.0]
    assert policy.snapshots[1].vm_migration_loss_mips_s.tolist() == pytest.approx([0.0, 20 * dt1])


def test_idle_host_draws_nothing_and_a_vm_leaves_after_two_zero_samples():
    # VM 1 runs at 20 % then 0, 0: removed at the first update where its request is 0 (t = 300.1 interpolates
    # samples 1 and 2, both 0); its host is then empty and draws nothing.
    tr = trace([[50] * 4, [20, 0, 0, 0]], [1000, 1000], [1000, 1000])
    r = simulate(tr, datacenter([SMALL, SMALL]), Scripted([0, 1]))
    assert r.vms_removed == 1
    assert r.energy_kwh == pytest.approx(power(0.5) * 600 / 3.6e6, rel=1e-12)
    assert r.slatah == 0 and r.pdm == 0


def test_oversubscription_scales_and_floors_allocations():
    # 800 + 400 MIPS requested on 1000: each gets floor(request x 1000 / 1200): 666 + 333 = 999 used.
    tr = trace([[80] * 4, [40] * 4], [1000, 1000], [1000, 1000])
    r = simulate(tr, datacenter([SMALL]), Scripted([0, 0]))
    assert r.energy_kwh == pytest.approx(power(0.999) * 600 / 3.6e6, rel=1e-12)
    assert r.slatah == 1.0
    assert r.sla_overall == pytest.approx(201 / 1200)
    assert r.pdm == 0


def test_a_request_is_capped_per_pe():
    # A 2500-MIPS VM at 100 % on a 1-PE 1000-MIPS host gets 1000: the host counts as violating all the time.
    tr = trace([[100] * 3], [2500], [1000])
    r = simulate(tr, datacenter([SMALL]), Scripted([0]))
    assert r.energy_kwh == pytest.approx(power(1.0) * 300 / 3.6e6, rel=1e-12)
    assert r.slatah == 1.0
    assert r.sla_overall == pytest.approx(1500 / 2500)


def test_requests_interpolate_between_samples():
    # 0 % then 60 %: at 300.1 the request is 60 % x 0.1 / 300 of the way from sample 1 (60) to 2 (60) = 60 %;
    # at 600.1 between samples 2 (60) and 3 (0): 60 x (1 - 0.1 / 300) %.
    tr = trace([[0, 60, 60, 0]], [1000], [1000])
    policy = Scripted([0])
    simulate(tr, datacenter([SMALL]), policy)
    assert policy.snapshots[0].vm_requested_mips[0] == pytest.approx(600.0)
    assert policy.snapshots[1].vm_requested_mips[0] == pytest.approx(600 * (1 - 0.1 / 300))
    assert policy.snapshots[1].vm_history[0, :2] == pytest.approx([0.6 * (1 - 0.1 / 300), 0.6])


def test_a_pluggable_migration_time_is_used():
    def slow(ram_mb, cpu_utilization, bandwidth_mbit_s):
        assert ram_mb.tolist() == [100.0] and cpu_utilization.tolist() == pytest.approx([0.4])
        assert bandwidth_mbit_s.tolist() == [1000.0]
        return np.array([100.0])

    tr = trace([[50] * 4, [40] * 4], [1000, 500], [1000, 100])
    policy = Scripted([0, 0], {1: [Migration(1, 1)]})
    r = simulate(tr, datacenter([SMALL, SMALL]), policy, SimulationConfig(migration_time=slow))
    assert r.pdm == pytest.approx(20 * 100 / (700 * 600), rel=1e-9)  # SLA time runs from 300.1 to 900.1
    assert policy.snapshots[1].vm_host.tolist() == [0, 1]


def test_a_migration_spanning_an_update_is_in_flight_in_the_snapshot():
    tr = trace([[50] * 4, [40] * 4], [1000, 500], [1000, 100])
    policy = Scripted([0, 0], {1: [Migration(1, 1)]})
    simulate(tr, datacenter([SMALL, SMALL]), policy, SimulationConfig(migration_time=lambda r, u, b: r * 0 + 400.0))
    during = policy.snapshots[1]
    assert during.vm_migrating.tolist() == [False, True]
    assert [(f.vm, f.source, f.target) for f in during.in_flight] == [(1, 0, 1)]
    assert during.migrating_in(1).tolist() == [1] and during.migrating_out(0).tolist() == [1]
    assert policy.snapshots[2].vm_host.tolist() == [0, 1] and not policy.snapshots[2].in_flight


@pytest.mark.parametrize(
    "moves",
    [[Migration(0, 0)], [Migration(5, 1)], [Migration(0, 9)]],
)
def test_invalid_migrations_are_refused(moves):
    tr = trace([[50] * 4, [40] * 4], [1000, 500], [1000, 100])
    with pytest.raises(SimulationError):
        simulate(tr, datacenter([SMALL, SMALL]), Scripted([0, 0], {1: moves}))


def test_initial_placement_must_place_every_vm():
    tr = trace([[50] * 4], [1000], [1000])
    # -1: no host could take it (too few hosts, bad input to the CLI); another index: the policy broke the contract
    with pytest.raises(NoHostError, match="no host"):
        simulate(tr, datacenter([SMALL]), Scripted([-1]))
    with pytest.raises(SimulationError, match="gave host 3 to VM 0") as broken:
        simulate(tr, datacenter([SMALL]), Scripted([3]))
    assert not isinstance(broken.value, NoHostError)
