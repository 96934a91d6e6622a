"""The first two hours of a real PlanetLab day: figures are sane, and equal to what this engine gave before."""

from __future__ import annotations

import pytest

from advisor.simulation.datacenter import planetlab_datacenter
from advisor.simulation.engine import simulate
from advisor.simulation.policies import make_policy
from advisor.simulation.traces import load_planetlab


@pytest.fixture(scope="module")
def two_hours(planetlab_day):
    return load_planetlab(planetlab_day).head(24)


def test_the_day_loads_as_cloudsim_reads_it(planetlab_day):
    trace = load_planetlab(planetlab_day)
    assert (trace.n_vms, trace.n_samples, trace.day) == (1052, 288, "20110303")
    assert set(trace.vm_mips.tolist()) == {2500.0, 2000.0, 1000.0, 500.0}
    assert (trace.utilization[288] == trace.utilization[287]).all()
    assert trace.utilization.min() >= 0 and trace.utilization.max() <= 1


# Pinned from this engine (its full days match CloudSim's published-by-the-notes figures; see docs/simulation.md).
@pytest.mark.parametrize(
    ("policy", "energy_kwh", "migrations", "slatah", "pdm"),
    [
        ("none", 67.18556719413694, 0, 0.0, 0.0),
        ("lr-mmt", 19.13022068280243, 3255, 0.06739591301311029, 0.0009974200074262505),
        ("mfped", 10.639813836295918, 2385, 0.03696476189290226, 0.0006985660399939432),
    ],
)
def test_two_hours(two_hours, policy, energy_kwh, migrations, slatah, pdm):
    r = simulate(two_hours, planetlab_datacenter(), make_policy(policy))
    assert r.updates == 23 and r.vms == 1052 and r.hosts == 800
    # sane: between every active host idle and every host at full power for two hours
    assert 0 < r.energy_kwh < 800 * 135 * 2 / 1000
    assert 0 <= r.slatah < 0.2 and 0 <= r.pdm < 0.01
    assert r.utilization_clamped == 0
    assert r.energy_kwh == pytest.approx(energy_kwh, rel=1e-6)
    assert r.migrations == migrations
    assert r.slatah == pytest.approx(slatah, rel=1e-6, abs=1e-12)
    assert r.pdm == pytest.approx(pdm, rel=1e-6, abs=1e-12)
