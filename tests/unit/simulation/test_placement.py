"""MMT selection, PABFD / MFPED / first-fit choices and the policy steps, on hand-made snapshots."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.simulation.datacenter import ML110_G4, ML110_G5, HostType
from advisor.simulation.detectors import StaticThreshold
from advisor.simulation.interface import Migration
from advisor.simulation.placement import NO_HOST, FirstFit, MediumFit, PowerAwareBestFit
from advisor.simulation.policies import ConsolidationPolicy, MinimumMigrationTime, make_policy, policy_names
from advisor.simulation.working import WorkingCluster

from .helpers import LINEAR, SMALL, datacenter, snapshot

NEVER = StaticThreshold(10.0)


@pytest.mark.parametrize(
    ("rams", "chosen"),
    [([1740, 613, 870, 613], 1), ([870, 1740], 0), ([1740, 1740], 0), ([2000, 1000, 500], 2)],
)
def test_mmt_takes_the_least_ram_first_in_list_order(rams, chosen):
    dc = datacenter([ML110_G5])
    snap = snapshot(dc, [500.0] * len(rams), [0] * len(rams), [100.0] * len(rams), vm_ram=rams)
    assert MinimumMigrationTime().select(WorkingCluster(snap), 0) == chosen


def test_mmt_skips_migrating_vms_and_empty_hosts():
    dc = datacenter([ML110_G5, ML110_G5])
    work = WorkingCluster(snapshot(dc, [500.0, 500.0], [0, 0], [100.0, 100.0], vm_ram=[613, 1740]))
    work.migrating[0] = True
    assert MinimumMigrationTime().select(work, 0) == 1
    assert MinimumMigrationTime().select(work, 1) is None


def test_pabfd_prefers_the_least_power_increase_with_the_stale_baseline():
    # host 0: G4 idle (switched off), host 1: G5 idle, host 2: G5 at 50 %. A switched-off G5 costs only its
    # dynamic power (CloudSim's baseline is P(measured utilisation) = P(0)), and its first 10 % is cheap.
    dc = datacenter([ML110_G4, ML110_G5, ML110_G5])
    snap = snapshot(dc, [2500.0, 500.0], [2, -1], [2660.0 * 2 * 0.5, 300.0])
    assert PowerAwareBestFit().choose(WorkingCluster(snap), 1, np.zeros(3, dtype=bool), NEVER) == 1


def test_pabfd_skips_unsuitable_excluded_and_overloaded_hosts():
    dc = datacenter([ML110_G4, ML110_G5, ML110_G5, ML110_G5])
    # VM 0 at 2000 MIPS per PE: not on a G4 (1860 per PE). Host 1 excluded; host 2 would exceed THR 0.8.
    snap = snapshot(dc, [2500.0, 2500.0, 2500.0], [-1, 2, 3], [2000.0, 2400.0, 100.0])
    excluded = np.array([False, True, False, False])
    choice = PowerAwareBestFit().choose(WorkingCluster(snap), 0, excluded, StaticThreshold(0.8))
    assert choice == 3


def test_pabfd_never_checks_overload_on_an_empty_host():
    dc = datacenter([ML110_G5])
    snap = snapshot(dc, [2500.0], [-1], [2500.0])
    assert PowerAwareBestFit().choose(WorkingCluster(snap), 0, np.zeros(1, dtype=bool), StaticThreshold(0.1)) == 0


BIG = HostType("big", 1, 2000.0, 4096.0, 1000.0, LINEAR)  # 2000 MIPS / 200 W = 10 MIPS/W, SMALL has 5


@pytest.mark.parametrize(
    ("types", "loads", "chosen"),
    [
        ([SMALL, SMALL, SMALL], [0.3, 0.55, 0.9], 1),  # closest to 60 %
        ([SMALL, BIG, SMALL], [0.5, 0.5, 0.5], 1),  # tie: more MIPS per watt at full power
        ([SMALL, SMALL, BIG, BIG], [0.5, 0.5, 0.5, 0.5], 2),  # tie on both: lowest index
        ([SMALL, SMALL], [0.0, 0.2], 1),  # an empty host is 0.6 away
    ],
)
def test_mfped_choice(types, loads, chosen):
    dc = datacenter(types)
    totals = [t.total_mips for t in types]
    n = len(types)
    snap = snapshot(dc, [*totals, 100.0], [*range(n), -1], [u * m for u, m in zip(loads, totals, strict=True)] + [10.0])
    assert MediumFit(0.6).choose(WorkingCluster(snap), n, np.zeros(n, dtype=bool), NEVER) == chosen


def test_mfped_uses_the_utilisation_measured_at_the_update_within_a_round():
    dc = datacenter([SMALL, SMALL])
    snap = snapshot(dc, [1000.0, 1000.0, 300.0, 300.0], [0, 1, -1, -1], [550.0, 200.0, 300.0, 300.0])
    work = WorkingCluster(snap)
    excluded = np.zeros(2, dtype=bool)
    assert MediumFit().choose(work, 2, excluded, NEVER) == 0
    work.add(2, 0)  # host 0 is now at 85 % tentatively, but MFPED still sees 55 %; only capacity stops it
    assert MediumFit().choose(work, 3, excluded, NEVER) == 1


def test_first_fit_takes_the_lowest_suitable_index():
    dc = datacenter([ML110_G4, ML110_G5, ML110_G5])
    snap = snapshot(dc, [2500.0, 1000.0], [1, -1], [2000.0, 900.0])
    assert FirstFit().choose(WorkingCluster(snap), 1, np.zeros(3, dtype=bool), NEVER) == 0


def test_overloaded_host_sheds_least_ram_vms_until_below_threshold():
    # host 0: 4 VMs of 1000 MIPS at 100 % on 5320 MIPS (75 %) -> THR 0.5 overloaded until two are gone.
    dc = datacenter([ML110_G5, ML110_G5, ML110_G5])
    snap = snapshot(
        dc,
        [1000.0] * 4 + [1000.0],
        [0, 0, 0, 0, 1],
        [1000.0] * 5,
        vm_ram=[1740, 613, 870, 1740, 613],
    )
    policy = ConsolidationPolicy("t", StaticThreshold(0.5), PowerAwareBestFit(), underload=False)
    moved = policy.decide(snap)
    assert sorted(m.vm for m in moved) == [1, 2]
    assert all(m.target != 0 for m in moved)


def test_underload_moves_all_or_nothing():
    dc = datacenter([SMALL, SMALL, SMALL])
    # host 0 at 10 %, host 1 at 50 %, host 2 at 60 %. Host 0's VM goes to host 1 (it then stops being a
    # candidate); host 2's VM fits nowhere (host 0 was emptied, host 1 is full), so host 2 keeps it.
    snap = snapshot(dc, [1000.0, 1000.0, 1000.0], [0, 1, 2], [100.0, 500.0, 600.0])
    policy = ConsolidationPolicy("t", StaticThreshold(1.0), PowerAwareBestFit())
    assert list(policy.decide(snap)) == [Migration(0, 1)]


def test_registry_has_every_baseline_and_builds_them():
    assert {"none", "thr-mmt", "iqr-mmt", "mad-mmt", "lr-mmt", "mfped"} <= set(policy_names())
    for name in ("none", "thr-mmt", "iqr-mmt", "mad-mmt", "lr-mmt", "mfped"):
        assert make_policy(name).name == name
    with pytest.raises(KeyError):
        make_policy("nope")
    assert NO_HOST == -1
