"""The ledger of what relief plans predicted, settled with what the simulator measured on the same hosts."""

from __future__ import annotations

import math
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from advisor.evaluation.ledger import Ledger


def snapshot(violation_s: list[float], loss: list[float] | None = None, migrating: list[bool] | None = None) -> Any:
    """Hosts' SLA seconds so far; VMs' MIPS-seconds lost migrating so far, and which migrate now (none: no VM)."""
    return SimpleNamespace(host_violation_s=np.array(violation_s), interval_s=300.0,
                           vm_migration_loss_mips_s=np.array(loss or []), vm_migrating=np.array(migrating or []))


def cluster(load: list[float]) -> Any:
    """Hosts of 10 cores at these loads, no VM spread measured (so the forecast's floor of 0.3 cores)."""
    cores = np.full(len(load), 10.0)
    return SimpleNamespace(loads=SimpleNamespace(host_cpu=np.array(load) * cores, vm_host=np.zeros(0, np.int64)),
                           host_cores=cores, n_hosts=len(load), n_vms=0, vm_cpu_spread=None)


def plan(sources: list[int], after_load: list[float], seconds: list[float]) -> Any:
    moves = [SimpleNamespace(source=h, cost=SimpleNamespace(total_time_ms=SimpleNamespace(median=1000.0 * s)))
             for h, s in zip(sources, seconds, strict=True)]
    return SimpleNamespace(moves=moves, after=cluster(after_load))


def over_s(load: float) -> float:
    """SLA seconds expected over a 300 s interval on a 10-core host at this load, 0.3 cores of spread."""
    return 300.0 * 0.5 * math.erfc((10.0 - 10.0 * load) / (0.3 * math.sqrt(2.0)))


def test_a_plan_is_settled_with_what_was_measured_in_the_interval_after_it() -> None:
    ledger = Ledger()
    ledger.observe(snapshot([0.0, 0.0, 0.0]))
    ledger.observe(snapshot([50.0, 0.0, 300.0]))  # the interval before the plan
    relief = plan([0, 0, 2], [0.9, 0.4, 1.02], [20.0, 30.0, 40.0])
    ledger.relief(snapshot([50.0, 0.0, 300.0]), cluster([1.3, 0.5, 1.05]), relief)
    ledger.moves(relief)
    assert ledger.relieved_hosts == 0 and ledger.predicted_migration_s == pytest.approx(90.0)
    ledger.observe(snapshot([150.0, 0.0, 600.0]))  # the interval after it
    assert ledger.as_dict() == pytest.approx({
        "relieved_hosts": 2, "predicted_over_before_s": over_s(1.3) + over_s(1.05),
        "predicted_over_after_s": over_s(0.9) + over_s(1.02),
        "predicted_saved_s": over_s(1.3) + over_s(1.05) - over_s(0.9) - over_s(1.02),
        "measured_before_s": 350.0, "measured_after_s": 400.0,
        "predicted_migration_s": 90.0})


def test_a_plan_never_settled_is_not_counted_and_a_plan_without_moves_predicts_nothing() -> None:
    ledger = Ledger()
    ledger.observe(snapshot([0.0, 0.0]))
    ledger.relief(snapshot([0.0, 0.0]), cluster([0.5, 0.5]), plan([], [0.5, 0.5], []))
    ledger.observe(snapshot([10.0, 0.0]))
    ledger.relief(snapshot([10.0, 0.0]), cluster([1.2, 0.5]), plan([0], [0.8, 0.6], [5.0]))
    assert ledger.relieved_hosts == 0 and ledger.predicted_saved_s == 0.0 and ledger.measured_before_s == 0.0


def test_what_migrations_cost_the_guests_is_split_by_the_strategy_that_started_them() -> None:
    ledger = Ledger()
    ledger.observe(snapshot([0.0], [0.0, 0.0, 0.0], [False, False, False]))
    relief, packing = plan([0], [0.5], [10.0]), plan([0], [0.5], [10.0])
    relief.strategy, packing.strategy = "balance", "consolidate"
    ledger.moves(relief, [0])
    ledger.moves(packing, [2])
    ledger.observe(snapshot([0.0], [30.0, 0.0, 5.0], [True, False, False]))  # VM 2 has landed
    ledger.moves(packing, [1])  # VM 2 is no longer followed: what it loses later is not its old move's
    ledger.observe(snapshot([0.0], [40.0, 7.0, 9.0], [False, False, False]))
    ledger.observe(snapshot([0.0], [50.0, 7.0, 9.0], [False, False, False]))  # VM 0 landed before: not counted
    assert ledger.loss_mips_s == pytest.approx({"balance": 40.0, "consolidate": 12.0})
    assert ledger.as_dict()["consolidate_loss_mips_s"] == pytest.approx(12.0)
