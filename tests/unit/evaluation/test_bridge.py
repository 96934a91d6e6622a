"""The simulator's snapshot as the engine's arrays: MIPS as cores, forecast demand, slow-PE rules, who may move."""

from __future__ import annotations

import numpy as np
import pytest

from advisor.evaluation.bridge import Forecast, fading, forecast_utilization, to_arrays
from advisor.simulation import planetlab_datacenter
from tests.unit.simulation.helpers import snapshot


def history(rows: list[list[float]]) -> np.ndarray:
    h = np.zeros((len(rows), 30))
    for k, row in enumerate(rows):
        h[k, : len(row)] = row
    return h


def test_hosts_and_vms_become_cores_memory_power_and_links() -> None:
    dc = planetlab_datacenter(4)  # G4, G5, G4, G5
    s = snapshot(dc, [2500, 1000, 500], [1, 1, -1], [2000, 500, 0], vm_ram=[870, 1740, 613],
                 history=history([[0.8, 0.8, 0.8], [0.5, 0.5, 0.5], [0.0]]))
    arrays, index = to_arrays(s)
    assert index.tolist() == [0, 1]  # the removed VM is left out
    assert arrays.host_cores.tolist() == [3.72, 5.32, 3.72, 5.32]
    assert arrays.host_idle_w.tolist() == [86.0, 93.7, 86.0, 93.7] and arrays.host_max_w.tolist()[:2] == [117, 135]
    assert arrays.host_bandwidth_mib_s[0] == pytest.approx(59.6, abs=0.05)  # half of 1 Gbit/s
    assert arrays.vm_vcpus.tolist() == [2.5, 1.0]
    assert arrays.vm_cpu.tolist() == pytest.approx([2.0, 0.5])
    assert arrays.loads.host_cpu.tolist() == pytest.approx([0.0, 2.5, 0.0, 0.0])
    assert arrays.vm_memory_used_mib[0] == pytest.approx(870e6 / 2**20)
    assert arrays.vm_dirty_rate_mib_s.tolist() == pytest.approx([0.8 * 40, 0.5 * 40])
    # the 2,500-MIPS VM asks 2,000 MIPS of one PE: more than a G4's 1,860, so a hard rule against the G4 hosts
    rules = arrays.host_rules
    assert rules.names == ("needs PEs of 2500 MIPS",) and rules.must.tolist() == [True]
    assert rules.hosts.row(0).tolist() == [0, 2] and rules.of_vm.row(0).tolist() == [0]
    assert not rules.of_vm.has_row(1)


def test_a_fast_vm_asking_little_only_prefers_fast_pes() -> None:
    s = snapshot(planetlab_datacenter(2), [2500], [1], [500], history=history([[0.2, 0.2]]))
    rules = to_arrays(s)[0].host_rules
    assert rules.names == ("prefers PEs of 2500 MIPS",) and rules.must.tolist() == [False]


@pytest.mark.parametrize(("rows", "forecast", "expected"), [
    ([[0.2, 0.6, 0.4]], Forecast(window=3), 0.4),  # the mean of the last 3 beats now
    ([[0.9, 0.1, 0.2]], Forecast(window=3), 0.9),  # now beats the mean
    ([[0.5, 0.5, 0.5, 0.5]], Forecast(window=3, spread=2.0), 0.5),  # no spread, no margin
    ([[0.4, 0.6, 0.4, 0.6]], Forecast(window=2, spread=1.0, std_window=4), 0.6),  # mean 0.5 + 1 std 0.1
    ([[0.95, 0.5]], Forecast(window=1, spread=5.0), 1.0),  # never above 1
])
def test_forecast_utilization(rows: list[list[float]], forecast: Forecast, expected: float) -> None:
    s = snapshot(planetlab_datacenter(2), [1000], [0], [rows[0][0] * 1000], history=history(rows))
    assert forecast_utilization(s, np.array([0]), forecast)[0][0] == pytest.approx(expected)


def test_fading_vms_are_those_idle_in_a_recent_sample() -> None:
    s = snapshot(planetlab_datacenter(2), [1000, 1000], [0, 1], [300, 300],
                 history=history([[0.3, 1e-4, 0.3], [0.3, 0.3, 0.3, 0.0]]))
    assert fading(s, np.array([0, 1]), 3).tolist() == [True, False]
    assert fading(s, np.array([0, 1]), 0).tolist() == [False, False]
    arrays, _ = to_arrays(s, pin_fading=3)
    assert arrays.vm_movable.tolist() == [False, True]
