"""A migration the executor gives a share of its links (or the whole link a plan priced a share of) is predicted
again at the bandwidth it gets, through the predictor it is given, and the record says at which; the fake
hypervisor on a fake clock, as in test_executor."""

from __future__ import annotations

from dataclasses import replace

import pytest

from advisor.domain.model import Interval, MigrationCost, MigrationInputs, ModelRef, Technique
from tests.unit.execution.test_executor import COST, FakeClock, make, move, wait_final, world_of


class Physics:
    """A predictor that sends the memory at the bandwidth the inputs allow, and counts its calls."""

    def __init__(self, fail: bool = False) -> None:
        self.calls: list[tuple[float, Technique]] = []
        self.fail = fail

    def __call__(self, inputs: MigrationInputs, technique: Technique) -> MigrationCost:
        self.calls.append((inputs.usable_bandwidth_mib_s, technique))
        if self.fail:
            raise ValueError("the model cannot be read")
        ms = inputs.memory_mib / inputs.usable_bandwidth_mib_s * 1000
        return MigrationCost(technique, Interval(ms * 0.8, ms, ms * 1.5), Interval(10, 20, 40),
                             Interval(inputs.memory_mib, inputs.memory_mib, inputs.memory_mib), True,
                             ModelRef("physics", "test"))


WHOLE = MigrationInputs(1000, 8, 100, 100)  # 1000 MiB at 100 MiB/s: 10 s


def test_a_migration_given_half_the_link_is_predicted_again_at_it_and_its_eta_follows() -> None:
    clock, physics = FakeClock(), Physics()
    world = world_of(clock, {"vm0": "a", "vm1": "a"})
    executor, store, observer = make(clock, world, links={"a": 100.0, "t0": 100.0, "t1": 100.0}, predict=physics)
    alone = replace(move("vm0", "a", "t0"), inputs=WHOLE, predicted_cost=physics(WHOLE, Technique.PRECOPY))
    physics.calls.clear()
    first = executor.submit("rec-0", alone, actor="x").operation_id
    second = executor.submit("rec-1", replace(alone, vm_id="vm1", target_host_id="t1"), actor="x").operation_id
    clock.sleep(0.005)  # both started, none polled yet
    # the first has the link to itself, as predicted: it keeps its prediction
    assert executor.get(first).predicted.total_time_ms.median == pytest.approx(10_000)
    assert executor.get(first).predicted_mib_s == 100
    # the second shares a's link: predicted again at 50 MiB/s, through the predictor, with its technique
    shared = executor.get(second)
    assert physics.calls == [(50.0, Technique.PRECOPY)]
    assert shared.parameters.bandwidth_mib_s == 50 and shared.predicted_mib_s == 50
    assert shared.predicted.total_time_ms.median == pytest.approx(20_000)
    assert any("predicted again at 50.0 MiB/s" in e.message and "was 10.0 s" in e.message and "at 100.0 MiB/s"
               in e.message for e in shared.timeline)
    assert store.records[second].predicted.total_time_ms.median == pytest.approx(20_000)  # stored
    # before QEMU reports a rate, the ETA is that prediction's
    watched = next(iter(executor.watch(second, timeout_s=0.0)))
    assert watched.estimate.eta_ms == pytest.approx(20_000, abs=50) and "50.0 MiB/s" in watched.estimate.reason
    world.release.set()
    ended = wait_final(clock, executor, second)
    # predicted against actual is judged on the prediction at its share
    assert ended.predicted.total_time_ms.median == pytest.approx(20_000)
    assert [r.predicted_mib_s for r in observer.ended if r.operation_id == second] == [50]


def test_a_fast_source_shared_by_two_gives_each_its_whole_cap_and_keeps_their_prediction() -> None:
    clock, physics = FakeClock(), Physics()
    world = world_of(clock, {"vm0": "a", "vm1": "a"})
    executor, _, _ = make(clock, world, links={"a": 200.0, "t0": 100.0, "t1": 100.0}, predict=physics)
    alone = replace(move("vm0", "a", "t0"), inputs=WHOLE)
    executor.submit("rec-0", alone, actor="x")
    second = executor.submit("rec-1", replace(alone, vm_id="vm1", target_host_id="t1"), actor="x").operation_id
    clock.sleep(0.005)
    # a's 200 MiB/s halved is each target's 100: the old rule (the pair's link over two) gave 50
    assert executor.get(second).parameters.bandwidth_mib_s == 100
    assert physics.calls == [] and executor.get(second).predicted == COST
    world.release.set()
    wait_final(clock, executor, second)


def test_a_plan_move_priced_at_a_share_it_does_not_get_is_predicted_again_at_the_whole_link() -> None:
    clock, physics = FakeClock(), Physics()
    world = world_of(clock, {"vm0": "a"})
    executor, _, _ = make(clock, world, predict=physics)
    priced = MigrationInputs(1000, 8, 100, 50)  # the plan expected it beside another move out of a
    op = executor.submit("rec-0", replace(move("vm0", "a", "t0"), inputs=priced,
                                          predicted_cost=physics(priced, Technique.PRECOPY)), actor="x").operation_id
    clock.sleep(0.005)
    ran = executor.get(op)
    assert (ran.parameters.bandwidth_mib_s, ran.predicted_mib_s) == (100, 100)
    assert ran.predicted.total_time_ms.median == pytest.approx(10_000)
    world.release.set()
    wait_final(clock, executor, op)


def test_a_migration_that_cannot_be_predicted_again_keeps_its_prediction_and_says_so() -> None:
    clock, physics = FakeClock(), Physics(fail=True)
    world = world_of(clock, {"vm0": "a", "vm1": "a"})
    executor, _, _ = make(clock, world, predict=physics)
    executor.submit("rec-0", move("vm0", "a", "t0"), actor="x")
    second = executor.submit("rec-1", replace(move("vm1", "a", "t1"), inputs=WHOLE), actor="x").operation_id
    world.release.set()
    ended = wait_final(clock, executor, second)
    assert ended.phase.value == "succeeded" and ended.predicted == COST and ended.predicted_mib_s == 100
    assert any("keeps its prediction made at 100.0 MiB/s: cannot predict it at 50.0 MiB/s" in e.message
               for e in ended.timeline)


@pytest.mark.parametrize(("links", "running", "given"), [
    ({}, [], 0.0),  # nothing bounds it: it keeps "no cap"
    ({}, [("a", "t1")], 0.0),
    ({"a": 100.0, "t0": 100.0}, [], 100.0),  # alone, its hosts' links bound it
    ({"a": 100.0, "t0": 100.0}, [("a", "t1")], 50.0),  # beside another, its share
], ids=["no link", "no link, shared", "link", "link, shared"])
def test_a_migration_without_a_cap_of_its_own_is_capped_at_its_share_only(
        links: dict[str, float], running: list[tuple[str, str]], given: float) -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm0": "a", "vm1": "a"})
    executor, _, _ = make(clock, world, links=links)
    if running:
        executor.submit("rec-1", move("vm1", *running[0]), actor="x")
    uncapped = move("vm0", "a", "t0")
    uncapped = replace(uncapped, parameters=replace(uncapped.parameters, bandwidth_mib_s=0.0), inputs=WHOLE)
    op = executor.submit("rec-0", uncapped, actor="x").operation_id
    clock.sleep(0.005)
    ran = executor.get(op)
    assert ran.parameters.bandwidth_mib_s == given
    assert ran.inputs is not None and ran.inputs.max_bandwidth_mib_s == (given or 100)
    world.release.set()
    wait_final(clock, executor, op)
