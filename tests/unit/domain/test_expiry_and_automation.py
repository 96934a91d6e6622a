"""When a recommendation no longer holds (a table of what changed and the words it gives), and the automation
levels: a VM's own level, the least automatic of a recommendation's VMs, what each level lets the advisor do,
and the 1-5 priority."""

from __future__ import annotations

from dataclasses import replace

import pytest

from advisor.domain.automation import (
    VM_LABEL,
    Level,
    check_vm_label,
    executes_itself,
    least_automatic,
    places_itself,
    rate,
    vm_level,
)
from advisor.domain.errors import InvalidArgument
from advisor.domain.expiry import ExpiryRules, MoveNow, stale_reason
from advisor.domain.model import (
    Interval,
    MigrationCost,
    MigrationInputs,
    MigrationParameters,
    ModelRef,
    Move,
    Technique,
    Vm,
)
from advisor.domain.validation import check_vm

MODEL = ModelRef("analytic", "1")


def cost(time_ms: float, downtime_ms: float = 50.0, converges: bool = True) -> MigrationCost:
    return MigrationCost(Technique.PRECOPY, Interval(time_ms * 0.8, time_ms, time_ms * 1.25),
                         Interval(downtime_ms * 0.8, downtime_ms, downtime_ms * 1.25),
                         Interval(900, 1000, 1100), converges, MODEL)


MOVE = Move("v", "a", "b", MigrationParameters(Technique.PRECOPY, 100, 300), cost(10_000), ("why",),
            inputs=MigrationInputs(1000, 5.0, 100, 100))
NOW_INPUTS = MigrationInputs(1000, 60.0, 100, 100)
HOLDS = MoveNow("a", True, (), cost(10_500), NOW_INPUTS)


@pytest.mark.parametrize(("now", "age_s", "words"), [
    (HOLDS, 60, None),
    (HOLDS, 7200, "made 120 min ago; recommendations hold for 60 min"),
    (replace(HOLDS, vm_host_id=None), 60, "VM v is no longer in the inventory"),
    (replace(HOLDS, vm_host_id="c"), 60, "VM v now runs on c, not a"),
    (replace(HOLDS, target_exists=False), 60, "target b is no longer in the inventory"),
    (replace(HOLDS, target_rejections=("in maintenance",)), 60, "target b would reject v now: in maintenance"),
    (replace(HOLDS, cost=cost(20_000)), 60, "predicted total time is now 20000 ms, outside the recommendation's "
                                            "8000-12500 ms (dirty rate 5.0 -> 60.0 MiB/s"),
    (replace(HOLDS, cost=cost(5_000)), 60, "predicted total time is now 5000 ms, outside"),
    (replace(HOLDS, cost=cost(15_000)), 60, None),  # within the interval widened by a quarter
    (replace(HOLDS, cost=cost(10_000, downtime_ms=400)), 60, "predicted downtime is now 400 ms, over the 300 ms"),
    (replace(HOLDS, cost=cost(10_000, converges=False)), 60, "precopy is now predicted not to converge"),
    (replace(HOLDS, cost=None), 60, None),  # cannot predict now: the other rules decide
    # the serving model now predicts the move's own inputs at 20 s too: the cluster did not change, the model did
    (replace(HOLDS, cost=cost(20_000), baseline=cost(20_000)), 60, None),
    (replace(HOLDS, cost=cost(40_000), baseline=cost(20_000)), 60, "outside the recommendation's 16000-25000 ms"),
])
def test_stale_reason(now: MoveNow, age_s: float, words: str | None) -> None:
    found = stale_reason(MOVE, now, created_at_s=1000.0, now_s=1000.0 + age_s, rules=ExpiryRules(3600, 0.25))
    if words is None:
        assert found is None
    else:
        assert found is not None and words in found, found


def test_no_age_limit_when_zero() -> None:
    assert stale_reason(MOVE, HOLDS, 0.0, 1e9, ExpiryRules(max_age_s=0)) is None


@pytest.mark.parametrize(("cluster", "label", "level"), [
    (Level.MANUAL, None, Level.MANUAL),
    (Level.FULL, None, Level.FULL),
    (Level.FULL, "manual", Level.MANUAL),
    (Level.MANUAL, "full", Level.FULL),
    (Level.PARTIAL, "disabled", None),
])
def test_a_vm_label_overrides_its_cluster(cluster: Level, label: str | None, level: Level | None) -> None:
    assert vm_level(cluster, {} if label is None else {VM_LABEL: label}) is level


def test_a_recommendation_runs_at_the_least_automatic_level_of_its_vms() -> None:
    assert least_automatic([Level.FULL, Level.PARTIAL, Level.FULL]) is Level.PARTIAL
    assert least_automatic([]) is Level.MANUAL
    assert [executes_itself(x) for x in Level] == [False, False, True]
    assert [places_itself(x) for x in Level] == [False, True, True]


def test_an_unknown_automation_label_is_refused_at_push() -> None:
    assert check_vm_label({VM_LABEL: "sometimes"}) is not None
    with pytest.raises(InvalidArgument, match=r"advisor\.automation must be one of manual, partial, full, disabled"):
        check_vm(Vm("v", "a", 128, 1, labels={VM_LABEL: "sometimes"}), "vms[0]")
    check_vm(Vm("v", "a", 128, 1, labels={VM_LABEL: "disabled"}), "vms[0]")


@pytest.mark.parametrize(("mandatory", "ratio", "level", "words"), [
    ("drain of h1 asked for", None, 1, "drain of h1"),
    ("", 50.0, 2, "gains 50.0x"),
    ("", 5.0, 3, ">= 5x"),
    ("", 1.5, 4, ">= 1x"),
    ("", 0.3, 5, "a slight gain"),
    ("", None, 3, "not measured"),
    ("", float("nan"), 3, "not measured"),
])
def test_priority(mandatory: str, ratio: float | None, level: int, words: str) -> None:
    got = rate(mandatory, ratio)
    assert got.level == level and words in got.reason
