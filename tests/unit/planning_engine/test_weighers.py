"""Weighers as a table: which eligible host wins under which weights, and the components behind it."""

from __future__ import annotations

from dataclasses import replace

import pytest

from advisor.planning.engine import FilterPolicy, VmGroupRule, VmHostRule, Weights
from advisor.planning.engine.filters import assess
from advisor.planning.engine.weighers import AFFINITY, ANTI, COMPONENTS, ENERGY, LOAD, describe, weigh
from tests.unit.planning_engine.helpers import cluster, host, vm

# "light" runs one small VM, "heavy" three; "idle" runs nothing (switched off).
HOSTS = [host("src"), host("light"), host("heavy"), host("idle")]
OTHERS = [vm("l1", "light"), vm("h1", "heavy"), vm("h2", "heavy"), vm("h3", "heavy")]


def winner(weights: Weights, *, rules: tuple = (), mover: dict | None = None) -> str:
    c = cluster(HOSTS, [vm("m", "src", **(mover or {})), *OTHERS], cpu=0.5, rules=rules)
    a = assess(c, c.loads, 0, FilterPolicy())
    s = weigh(c, c.loads, a, weights, mean_cpu=0.1)
    return c.host_ids[int(s.hosts[s.best()])]


@pytest.mark.parametrize(("weights", "rules", "mover", "expected"), [
    (Weights(load=1.0), (), None, "idle"),  # the least load after the move
    (Weights(load=-1.0), (), None, "heavy"),  # packing: the fullest that fits
    (Weights(load=1.0, energy=1.0), (), None, "light"),  # waking the idle host costs its 100 W idle power
    (Weights(load=-1.0, energy=1.0), (), None, "heavy"),
    (Weights(load=1.0, energy=1.0, affinity=1.0), (), {"affinity_groups": frozenset({"g"})}, "light"),
    (Weights(load=1.0, energy=1.0, affinity=1.0),
     (VmGroupRule("near-h1", frozenset({"m", "h1"}), together=True, must=False),), None, "heavy"),
    (Weights(load=-1.0, anti_affinity=1.0),
     (VmGroupRule("apart", frozenset({"m", "h1"}), together=False, must=False),), None, "light"),
    (Weights(load=1.0, host_affinity=1.0),
     (VmHostRule("prefer-heavy", frozenset({"m"}), frozenset({"heavy"}), on=True, must=False),), None, "heavy"),
    (Weights(load=1.0, host_anti_affinity=1.0),
     (VmHostRule("avoid-idle", frozenset({"m"}), frozenset({"idle"}), on=False, must=False),), None, "light"),
], ids=["spread", "pack", "spread+energy", "pack+energy", "affinity group without partner", "affinity partner",
        "soft anti-affinity", "soft host affinity", "soft host anti-affinity"])
def test_the_best_host_under_each_weighting(weights: Weights, rules: tuple, mover: dict | None,
                                            expected: str) -> None:
    assert winner(weights, rules=rules, mover=mover) == expected


def test_components_are_kept_unweighted_and_described() -> None:
    c = cluster(HOSTS, [vm("m", "src", affinity_groups=frozenset({"g"})), *OTHERS,
                        vm("p", "light", affinity_groups=frozenset({"g"}))], cpu=0.5)
    a = assess(c, c.loads, 0, FilterPolicy())
    s = weigh(c, c.loads, a, Weights(load=1.0, energy=1.0), mean_cpu=0.1, reference_w=100.0)
    by = {c.host_ids[int(h)]: k for k, h in enumerate(s.hosts)}
    assert len(COMPONENTS) == s.components.shape[0]
    assert s.components[LOAD, by["idle"]] == pytest.approx(1.0 / 16)  # 2 vCPUs x 0.5 busy on 16 cores
    assert s.power_w[by["idle"]] == pytest.approx(100.0 + 150.0 / 16)  # woken: idle power + its share of dynamic
    assert s.components[ENERGY, by["light"]] == pytest.approx(150.0 / 16 / 100.0)
    assert s.components[AFFINITY, by["light"]] == -1.0 and s.components[ANTI].sum() == 0
    text = describe(s, by["idle"], Weights(load=1.0, energy=1.0))
    assert "CPU 6%" in text and "+109 W" in text
    assert [c.host_ids[int(s.hosts[p])] for p in s.order(2)] == ["light", "heavy"]


def test_cpu_and_memory_weigh_within_the_load() -> None:
    """"lean" has CPU to spare and little memory, "roomy" the other way round: which wins follows the weights."""
    hosts = [host("src"), host("lean", memory=16384), host("roomy")]
    c = cluster(hosts, [vm("m", "src", vcpus=4), vm("busy", "roomy", vcpus=8)], cpu=1.0)
    a = assess(c, c.loads, 0, FilterPolicy())
    best = {w: c.host_ids[int((s := weigh(c, c.loads, a, w)).hosts[s.best()])]
            for w in (Weights(), Weights(memory=0.1), Weights(cpu=0.1))}
    # lean: CPU 4/16, memory 4096/16384 = 0.25; roomy: CPU 12/16, memory 8192/65536
    assert best == {Weights(): "lean", Weights(memory=0.1): "lean", Weights(cpu=0.1): "roomy"}


def test_a_component_weighted_zero_is_not_computed_and_the_total_is_the_same_to_the_bit() -> None:
    c = cluster(HOSTS, [vm("m", "src", affinity_groups=frozenset({"g"})), *OTHERS,
                        vm("p", "light", affinity_groups=frozenset({"g"}))], cpu=0.37)
    a = assess(c, c.loads, 0, FilterPolicy())
    for weights in (Weights(), Weights(load=-1.0, affinity=0.3), Weights(load=1.0, balance=0.7)):
        every = replace(weights, balance=weights.balance or 1.0, energy=weights.energy or 1.0)
        full = weigh(c, c.loads, a, every, mean_cpu=0.1)
        skipped = weigh(c, c.loads, a, weights, mean_cpu=0.1)
        assert skipped.total.tolist() == (weights.vector @ full.components).tolist()
        assert not skipped.power_w.any() and full.power_w.any()
