"""The migration monitor's decisions, as tables of polls and expected actions."""

from __future__ import annotations

from dataclasses import replace

import pytest

from advisor.domain.migration import Phase, Progress
from advisor.execution.monitor import (
    Abort,
    Action,
    MonitorPlan,
    MonitorState,
    Note,
    SetDowntime,
    StartPostcopy,
    finish,
    start,
    step,
)

PLAN = MonitorPlan(max_downtime_ms=300, deadline_ms=60_000, postcopy_allowed=True, initial_downtime_ms=100,
                   downtime_steps=4)


def poll(t_ms: float, iteration: int, remaining: float, dirty: float = 10.0, sent: float = 100.0,
         postcopy: bool = False) -> Progress:
    return Progress(t_ms, 1024.0, remaining, dirty, sent, iteration, in_postcopy=postcopy)


def run(plan: MonitorPlan, polls: list[tuple[float, Progress | None]]) -> tuple[MonitorState, list[Action]]:
    state, actions = start(plan)
    for now, progress in polls:
        state, more = step(state, progress, now, plan)
        actions += more
    return state, actions


def kinds(actions: list[Action]) -> list[str]:
    return [type(a).__name__ for a in actions]


def test_a_converging_precopy_only_ramps_the_downtime() -> None:
    state, actions = run(PLAN, [(500 * i, poll(500 * i, i, 1024 / 2**i)) for i in range(1, 7)])
    assert [a.downtime_ms for a in actions if isinstance(a, SetDowntime)] == [100, 150, 200, 250, 300]
    assert not any(isinstance(a, StartPostcopy | Abort) for a in actions)
    assert state.phase is Phase.PRECOPY


def test_dirtying_as_fast_as_sending_switches_to_postcopy_after_the_stall_rounds() -> None:
    polls = [(1000 * i, poll(1000 * i, i, 600.0, dirty=98.0, sent=100.0)) for i in range(1, 8)]
    state, actions = run(PLAN, polls)
    switches = [a for a in actions if isinstance(a, StartPostcopy)]
    assert len(switches) == 1 and "will not converge" in switches[0].reason
    assert state.postcopy_requested


def test_without_postcopy_a_stall_only_ramps_and_the_deadline_aborts() -> None:
    plan = replace(PLAN, postcopy_allowed=False)
    polls = [(1000 * i, poll(1000 * i, i, 600.0, dirty=98.0)) for i in range(1, 8)]
    polls.append((61_000, poll(61_000, 8, 600.0, dirty=98.0)))
    polls.append((61_500, poll(61_500, 8, 600.0, dirty=98.0)))
    _, actions = run(plan, polls)
    assert kinds(actions).count("Abort") == 1
    assert "deadline" in next(a for a in actions if isinstance(a, Abort)).reason


def test_the_deadline_forces_postcopy_when_allowed() -> None:
    _, actions = run(PLAN, [(60_000, poll(60_000, 2, 500.0))])
    assert kinds(actions)[-1] == "StartPostcopy"


def test_the_planned_switch_happens_at_its_time_once() -> None:
    plan = replace(PLAN, postcopy_after_ms=0.0)
    _, actions = run(plan, [(0, poll(0, 1, 1000.0)), (500, poll(500, 1, 900.0))])
    assert kinds(actions) == ["SetDowntime", "StartPostcopy"]


@pytest.mark.parametrize(("failures", "aborts"), [(1, 0), (2, 0), (3, 1), (6, 1)])
def test_lost_monitoring_aborts_once_in_precopy(failures: int, aborts: int) -> None:
    state, actions = run(PLAN, [(500 * i, None) for i in range(failures)])
    assert kinds(actions).count("Abort") == aborts
    if aborts:
        assert "monitoring failed 3 times in a row" in next(a for a in actions if isinstance(a, Abort)).reason
    assert state.monitoring_failures == failures


def test_one_good_poll_resets_the_failure_count() -> None:
    polls: list[tuple[float, Progress | None]] = [(0, None), (500, None), (1000, poll(1000, 1, 900.0)), (1500, None),
                                                  (2000, None)]
    _, actions = run(PLAN, polls)
    assert "Abort" not in kinds(actions)


def test_never_abort_once_in_postcopy() -> None:
    polls: list[tuple[float, Progress | None]] = [
        (500, poll(500, 1, 800.0)),
        (1000, poll(1000, 2, 400.0, postcopy=True)),
        (2000, None),
        (70_000, poll(70_000, 2, 100.0, postcopy=True)),  # past the deadline
        (71_000, None),
    ]
    state, actions = run(PLAN, polls)
    assert state.phase is Phase.POSTCOPY
    assert not any(isinstance(a, Abort | StartPostcopy) for a in actions)
    assert any(isinstance(a, Note) and "never aborting" in a.message for a in actions)


def test_final_phases() -> None:
    state = MonitorState()
    assert finish(state, True, False).phase is Phase.SUCCEEDED
    assert finish(state, False, True).phase is Phase.ABORTED
    assert finish(state, False, False).phase is Phase.FAILED
    assert step(finish(state, True, False), None, 0, PLAN)[1] == []


def test_ramp_without_an_initial_value_is_flat() -> None:
    plan = MonitorPlan(max_downtime_ms=300, deadline_ms=0, postcopy_allowed=False)
    assert [plan.downtime_at(i) for i in range(6)] == [300] * 6
