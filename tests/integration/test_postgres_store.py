"""The advisor on PostgreSQL (`database_url`), wired as `advisor serve` wires it, on a real server the tests start
(tests.support.postgres): a move runs to its end and another advisor, with a data directory of its own, finds it
there; tokens made and revoked by the command line (`--database-url`, `ADVISOR_DATABASE_URL`) count at once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from advisor.adapters.fake_hypervisor import FakeWorld
from advisor.api.client import ClientError
from advisor.app import App
from advisor.domain.cluster import InventoryChange
from advisor.domain.model import Host, Objective, Vm
from advisor.domain.recommendation import Decision, MoveState, RecommendationState, StartMove
from advisor.usecases.records import apply_event
from tests.support import local_advisor

pytestmark = pytest.mark.integration
S = RecommendationState


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "advisor.cli", *args], capture_output=True, text=True, timeout=60,
                          check=False, env={**os.environ, **env})


def wait_state(app: App, rec_id: str, state: RecommendationState) -> None:
    deadline = time.monotonic() + 10
    while (now := app.usecases.review.get(rec_id).state) is not state:
        assert time.monotonic() < deadline, now
        time.sleep(0.02)


def test_a_move_ends_on_postgresql_and_another_advisor_finds_it_there(tmp_path: Path, postgres_url: str) -> None:
    world = FakeWorld(("a", "b"))
    for vm in ("v1", "v2"):
        world.add_guest(vm, "a")
    first, second = tmp_path / "first", tmp_path / "second"
    with local_advisor(first, world.connect, poll_interval_s=0.01, database_url=postgres_url) as app:
        app.usecases.ingestion.push_inventory(InventoryChange(
            hosts=tuple(Host(h, 16, 32768, hypervisor_uri=f"fake://{h}") for h in ("a", "b")),
            vms=(Vm("v1", "a", 4096, 2), Vm("v2", "a", 4096, 2))))
        uc = app.usecases
        moved = uc.advice.recommend_target("v1", Objective())
        uc.review.decide(moved.id, Decision.APPROVE, "alice", "")
        operation = uc.migrations.execute(moved.id, "alice")
        wait_state(app, moved.id, S.SUCCEEDED)
        lost = uc.advice.recommend_target("v2", Objective())
        uc.review.decide(lost.id, Decision.APPROVE, "alice", "")
        apply_event(app.store, lost.id, StartMove(0, "lost-op"), "alice", time.time())  # then the advisor died
    # Only this advisor's own files are in its data directory: the state is in PostgreSQL.
    assert not list(first.glob("*.sqlite3*"))

    with local_advisor(second, world.connect, poll_interval_s=0.01, database_url=postgres_url) as app:
        uc = app.usecases
        hosts, _ = uc.queries.list_hosts()
        assert [h.host.id for h in hosts] == ["a", "b"] and world.host_of("v1") == "b"
        assert uc.review.get(moved.id).state is S.SUCCEEDED
        assert [r.operation_id for r in app.store.outcomes()] == [operation.operation_id]
        uc.migrations.reconcile()
        assert uc.review.get(lost.id).status(0).state is MoveState.FAILED
        retried = uc.migrations.execute(lost.id, "bob", retry=True)
        wait_state(app, lost.id, S.SUCCEEDED)
        assert retried.attempt == 2 and world.host_of("v2") == "b"


def test_tokens_of_the_command_line_on_postgresql_open_and_close_the_server(make_app: object, tmp_path: Path,
                                                                             postgres_url: str) -> None:
    from advisor.api.client import AdvisorClient

    app = make_app(tmp_path / "server", database_url=postgres_url)  # type: ignore[operator]
    made = cli("tokens", "create", "--database-url", postgres_url, "--name", "sre", "--role", "reader")
    assert made.returncode == 0, made.stderr
    with AdvisorClient(f"127.0.0.1:{app.server.port}", token=made.stdout.strip(), timeout_s=20) as client:
        assert list(client.list_hosts()) == []
        listed = cli("tokens", "list", "--json", ADVISOR_DATABASE_URL=postgres_url)
        assert '"sre"' in listed.stdout and "adv_" not in listed.stdout
        assert cli("tokens", "revoke", "sre", "--database-url", postgres_url).returncode == 0
        with pytest.raises(ClientError) as refused:
            list(client.list_hosts())
        assert refused.value.code == "UNAUTHENTICATED"
