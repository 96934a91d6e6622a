"""The learned cost model behind the engine's MoveCosts, and as the simulator's migration time."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from advisor.domain.model import Technique
from advisor.evaluation.costs import LearnedMigrationTime, LearnedMoveCosts, learned_predictor
from advisor.ml.predictor import AnalyticPredictor
from advisor.planning.engine import TECHNIQUES, AnalyticMoveCosts, CostRequest, TechniqueRules
from advisor.simulation import cloudsim_migration_time


def request(n: int = 3) -> CostRequest:
    return CostRequest(np.arange(n), np.zeros(n, dtype=np.int64), np.array([512.0, 2048.0, 8192.0][:n]),
                       np.array([1.0, 30.0, 200.0][:n]), np.full(n, 117.0), np.array([True, True, False][:n]))


def test_over_the_analytic_predictor_it_agrees_with_the_engines_own_analytic_costs() -> None:
    ours = LearnedMoveCosts(AnalyticPredictor()).estimate(request())
    engine = AnalyticMoveCosts().estimate(request())
    assert ours.technique.tolist() == engine.technique.tolist()
    assert ours.total_ms == pytest.approx(engine.total_ms)
    assert ours.model.startswith("analytic")


def test_the_learned_model_prices_every_allowed_technique_and_the_engine_chooses() -> None:
    predictor = learned_predictor()  # the active model (the analytic one, saying why, if it is refused)
    costs = LearnedMoveCosts(predictor)
    assert costs.name.startswith(f"{predictor.model.name} {predictor.model.version}")
    est = costs.estimate(request())
    assert len(est) == 3 and (est.total_ms[:, 0] <= est.total_ms[:, 1]).all()
    assert (est.total_ms[:, 1] <= est.total_ms[:, 2]).all() and ((est.p_converge >= 0) & (est.p_converge <= 1)).all()
    assert TECHNIQUES[int(est.technique[2])] is not Technique.POSTCOPY  # not allowed for that VM
    only = LearnedMoveCosts(learned_predictor(), TechniqueRules(techniques=(Technique.PRECOPY,))).estimate(request())
    assert set(only.technique.tolist()) == {0} and np.isinf(only.rank_ms[:, 1:]).all()


def test_the_migration_time_model_uses_ram_half_the_link_and_a_dirty_rate_from_cpu() -> None:
    model = LearnedMigrationTime(learned_predictor())
    memory, dirty, bandwidth = model.inputs(np.array([870.0]), np.array([0.5]), np.array([1000.0]))
    assert memory[0] == pytest.approx(829.7, abs=0.1) and dirty[0] == 20.0 and bandwidth[0] == pytest.approx(59.6, 0.01)
    ram = np.array([613.0, 870.0, 1740.0, 1740.0, 1740.0])
    cpu = np.array([0.1, 0.1, 0.0, 0.5, 1.0])
    seconds = model(ram, cpu, np.full(5, 1000.0))
    assert seconds.shape == (5,) and (seconds > 0).all()
    assert seconds[0] < seconds[1] < seconds[3] and seconds[2] <= seconds[3] <= seconds[4]  # RAM, then dirty rate
    cloudsim = cloudsim_migration_time(ram, cpu, np.full(5, 1000.0))
    ratio = seconds / cloudsim
    assert np.all((ratio[:3] > 0.8) & (ratio[:3] < 1.6))  # (nearly) idle VMs: about RAM / (BW / 2)
    assert model(np.zeros(0), np.zeros(0), np.zeros(0)).shape == (0,)
    assert "40 MiB/s x CPU utilisation" in model.name


def test_a_dirty_rate_nothing_measured_is_judged_as_unknown_not_as_the_links_speed_measured() -> None:
    # a compressed pre-copy of a VM whose rate is taken as the link's: unknown, compression's faster rate is taken
    # and it cannot converge; the same figure measured leaves the model to judge
    rules = TechniqueRules(techniques=(Technique.PRECOPY_COMPRESS,))
    measured = replace(request(1), dirty_rate_mib_s=np.array([117.0]))
    unknown = replace(measured, dirty_rate_known=np.array([False]))
    costs = LearnedMoveCosts(learned_predictor(), rules)
    assert costs.estimate(unknown).p_converge[0] == 0.0
    assert costs.estimate(measured).p_converge[0] > 0.0
