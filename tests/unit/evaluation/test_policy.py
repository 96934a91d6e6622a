"""The advisor policy in the simulator, on the first hours of a PlanetLab day."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from advisor.evaluation import POLICY, AdvisorParams, AdvisorPolicy, register
from advisor.evaluation.__main__ import main
from advisor.simulation import load_planetlab, make_policy, planetlab_datacenter, policy_names, simulate


def test_two_hours_of_a_day_sane_energy_real_migrations_far_fewer_than_mfped(planetlab_day: Path) -> None:
    trace = load_planetlab(planetlab_day).head(24)
    dc = planetlab_datacenter()
    policy = AdvisorPolicy()
    ours = simulate(trace, dc, policy)
    nothing = simulate(trace, dc, make_policy("none"))
    mfped = simulate(trace, dc, make_policy("mfped"))
    assert ours.migrations > 0 and ours.migrations == sum(policy.moves.values())
    assert 0 < ours.energy_kwh < 0.5 * nothing.energy_kwh  # consolidation saves most of the no-migration energy
    assert ours.energy_kwh < 1.5 * mfped.energy_kwh
    assert ours.migrations < mfped.migrations / 2
    assert 0 <= ours.slatah < 0.5 and ours.esv > 0
    assert ours.utilization_clamped == 0
    assert policy.ledger.predicted_migration_s > 0 and ours.migration_s > 0  # what the plans predicted, and cost


def test_anti_churn_holds_across_updates(planetlab_day: Path) -> None:
    trace = load_planetlab(planetlab_day).head(12)
    seen: dict[int, list[tuple[float, int, int]]] = {}

    class Watching(AdvisorPolicy):
        def decide(self, snapshot):  # type: ignore[no-untyped-def]
            chosen = super().decide(snapshot)
            for m in chosen:
                seen.setdefault(m.vm, []).append((snapshot.time_s, int(snapshot.vm_host[m.vm]), m.target))
            return chosen

    simulate(trace, planetlab_datacenter(), Watching(AdvisorParams(costs="analytic")))
    p = AdvisorParams()
    for moves in seen.values():
        assert len({t for t, _, _ in moves}) == len(moves)  # at most once per update
        for (t0, source, _), (t1, _, target) in itertools.pairwise(moves):
            assert t1 - t0 >= p.cooldown_s  # cooled down before moving again
            if t1 - t0 < p.return_factor * p.cooldown_s:
                assert target != source  # and not back where it came from


def test_register_adds_the_policy_once_and_the_module_runs_it(tmp_path: Path, planetlab_day: Path) -> None:
    register()
    register()
    assert POLICY in policy_names() and isinstance(make_policy(POLICY), AdvisorPolicy)
    out = tmp_path / "r.json"
    args = ["simulate", "--trace", "planetlab", "--input", str(planetlab_day), "--policy", "advisor", "--hours", "1"]
    assert main([*args, "--output", str(out)]) == 0
    assert json.loads(out.read_text())["policy"] == "advisor"
    assert main([*args, "--migration-time", "learned", "--output", str(out)]) == 0
    assert "dirty rate 40 MiB/s x CPU utilisation" in json.loads(out.read_text())["migration_time"]
    with pytest.raises(SystemExit) as exit_:  # an option of the command: the parser refuses a bad value
        main([*args, "--migration-time", "fast"])
    assert exit_.value.code == 2
