"""A leader cut off from PostgreSQL in the middle of a migration, on a real server (tests.support.postgres) and the
fake hypervisor: the leader reaches PostgreSQL through a relay the test cuts as a network partition does
(tests.support.partition), while another replica reaches it directly. The cut-off leader must stop its executor
before its lease can expire, so that the replica that takes the lease over never acts on the VM while it still
does; what the deposed leader writes afterwards carries its old term and is refused; the new leader follows the
migration to its end."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import psycopg
import pytest

from advisor.adapters.fake_hypervisor import FakeWorld
from advisor.adapters.sql.lease import Deposed
from advisor.domain.cluster import InventoryChange
from advisor.domain.migration import Phase
from advisor.domain.model import Host, Objective, Vm
from advisor.domain.recommendation import Decision
from advisor.execution.hypervisor import Hypervisor
from tests.support import local_advisor
from tests.support.partition import Partition
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.integration
TTL_S = 2.0  # short leases: the test waits for one to expire


class Recorded:
    """A hypervisor connection that notes every call made through it: who made it, what, when (monotonic)."""

    def __init__(self, inner: Hypervisor, who: str, calls: list[tuple[str, str, float]]) -> None:
        self._inner, self._who, self._calls = inner, who, calls

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._inner, name)
        if not callable(found):
            return found

        def call(*args: Any, **kwargs: Any) -> Any:
            self._calls.append((self._who, name, time.monotonic()))
            return found(*args, **kwargs)

        return call


def recorded(world: FakeWorld, who: str, calls: list[tuple[str, str, float]]) -> Callable[[str], Hypervisor]:
    return lambda uri: cast(Hypervisor, Recorded(world.connect(uri), who, calls))


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_a_leader_cut_off_mid_migration_stops_acting_before_another_leads(
        tmp_path: Path, postgres_server: PostgresServer, postgres_database: str,
        caplog: pytest.LogCaptureFixture) -> None:
    url = postgres_server.url(postgres_database)
    partition = Partition(postgres_server.port)
    world = FakeWorld(("a", "b"), gated=True)  # the migration runs until the test releases it
    world.add_guest("v1", "a")
    calls: list[tuple[str, str, float]] = []
    caplog.set_level(logging.INFO, logger="advisor.leadership")
    with ExitStack() as stack:
        stack.callback(partition.close)
        first = stack.enter_context(local_advisor(
            tmp_path / "first", recorded(world, "first", calls), database_url=partition.url(url), lease_ttl_s=TTL_S,
            poll_interval_s=0.05))
        second = stack.enter_context(local_advisor(
            tmp_path / "second", recorded(world, "second", calls), database_url=url, lease_ttl_s=TTL_S,
            poll_interval_s=0.05))
        stack.callback(partition.close)  # first of all at the end: the cut-off replica's hung connections end
        assert first.leadership.acting() and not second.leadership.acting()
        old_term = first.leadership.term
        inventory = InventoryChange(hosts=tuple(Host(h, 16, 32768, hypervisor_uri=f"fake://{h}") for h in ("a", "b")),
                                    vms=(Vm("v1", "a", 4096, 2),))
        for app in (first, second):  # each would have it from the other within seconds (the feed is not run here)
            app.usecases.ingestion.push_inventory(inventory)
        rec = first.usecases.advice.recommend_target("v1", Objective())
        first.usecases.review.decide(rec.id, Decision.APPROVE, "alice", "")
        operation = first.usecases.migrations.execute(rec.id, "alice")
        wait_for(lambda: ("first", "progress") in {(who, what) for who, what, _ in calls}, 10,
                 "the leader never polled its migration")

        partition.cut.set()
        cut_at = time.monotonic()
        seen: list[tuple[bool, bool]] = []
        while not (second_leads := second.leadership.acting()):  # read first: both true would be two leaders
            seen.append((first.leadership.acting(), second_leads))
            assert time.monotonic() - cut_at < 30, "the other replica never took over"
            time.sleep(0.005)
        seen.append((first.leadership.acting(), second_leads))
        took_s = time.monotonic() - cut_at
        assert (True, True) not in seen, "two leaders at once"
        assert first.leadership.deposed.is_set() and first.metrics.leader._value.get() == 0
        assert second.leadership.term == old_term + 1 and second.metrics.leader._value.get() == 1  # type: ignore[operator]

        # no two executors acted on the VM: every call of the cut-off leader came before the first of the new one
        wait_for(lambda: any(who == "second" for who, _, _ in calls), 10, "the new leader never looked at v1")
        last_of_first = max(t for who, _, t in calls if who == "first")
        first_of_second = min(t for who, _, t in calls if who == "second")
        assert last_of_first < first_of_second, calls
        # and the cut-off leader said so before the other was elected
        said = [(r.getMessage(), getattr(r, "replica", "")) for r in caplog.records]
        lost = said.index((next(m for m, _ in said if m.startswith("leadership lost")), first.leadership.replica))
        elected = said.index(("elected leader: taking over", second.leadership.replica))
        assert lost < elected, said

        world.release.set()  # the migration ends; the new leader follows it to its end
        wait_for(lambda: second.usecases.migrations.operation(operation.operation_id).phase.final, 20,
                 "the new leader never saw the migration end")
        ended = second.usecases.migrations.operation(operation.operation_id)
        assert ended.phase is Phase.SUCCEEDED and world.host_of("v1") == "b"
        assert [o.operation_id for o in second.store.outcomes()] == [operation.operation_id]
        assert any(f"took over as leader (term {old_term + 1})" in e.message for e in ended.timeline)

        # the deposed leader reaches PostgreSQL again: what it writes of an execution is refused by its term
        partition.heal()
        stale = replace(ended, phase=Phase.FAILED)
        refused = threading.Event()
        for _ in range(20):  # the pool's connections broken by the partition fail first, one by one
            try:
                first.store.save_migration(stale)
            except Deposed as error:
                assert f"term {old_term}" in str(error)
                refused.set()
                break
            except psycopg.OperationalError:
                continue
        assert refused.is_set(), "the deposed leader's write was not refused"
        assert second.store.get_migration(operation.operation_id).phase is Phase.SUCCEEDED  # type: ignore[union-attr]
        print(f"cut off: the other replica led after {took_s:.1f} s (lease {TTL_S:.0f} s); "
              f"the cut-off leader's last hypervisor call {first_of_second - last_of_first:.2f} s before the "
              f"new leader's first")
