"""Replica groups of their own clusters on one PostgreSQL server (tests.support.postgres), a database each: each
group elects its own leader and executes there, is pushed only its clusters' hosts (a host of another is refused,
naming where it belongs), and recommends and moves within them; a replica started with one group's clusters on
the other's database refuses to serve."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from advisor.adapters.fake_hypervisor import FakeWorld
from advisor.domain.cluster import InventoryChange
from advisor.domain.errors import FailedPrecondition, NotFound
from advisor.domain.model import Host, Objective, Vm
from advisor.domain.recommendation import Decision, RecommendationState
from tests.integration.test_partition import wait_for
from tests.support import local_advisor
from tests.support.postgres import PostgresServer

pytestmark = pytest.mark.integration


def cluster(name: str, *host_ids: str) -> InventoryChange:
    return InventoryChange(
        hosts=tuple(Host(h, 16, 32768, labels={"cluster": name}, hypervisor_uri=f"fake://{h}") for h in host_ids),
        vms=(Vm(f"{name}-vm", host_ids[0], 4096, 2),))


def test_two_groups_on_one_server_each_lead_and_serve_their_own_clusters(tmp_path: Path,
                                                                        postgres_server: PostgresServer) -> None:
    world = FakeWorld(("e1", "e2", "w1", "w2"))
    world.add_guest("east-vm", "e1")
    world.add_guest("west-vm", "w1")
    databases = [postgres_server.new_database() for _ in range(2)]
    try:
        with local_advisor(tmp_path / "east", world.connect, clusters=("east",), poll_interval_s=0.01,
                           database_url=postgres_server.url(databases[0])) as east, \
                local_advisor(tmp_path / "west", world.connect, clusters=("west",), poll_interval_s=0.01,
                              database_url=postgres_server.url(databases[1])) as west:
            assert east.leadership.acting() and west.leadership.acting()  # a lease each: two leaders
            assert east.leadership.term == west.leadership.term == 1
            east.usecases.ingestion.push_inventory(cluster("east", "e1", "e2"))
            west.usecases.ingestion.push_inventory(cluster("west", "w1", "w2"))
            with pytest.raises(FailedPrecondition, match=r"serves clusters east only .* w1 \(cluster 'west'\)"):
                east.usecases.ingestion.push_inventory(cluster("west", "w1", "w2"))
            with pytest.raises(NotFound):
                east.usecases.advice.recommend_target("west-vm", Objective())
            for app, name in ((east, "east"), (west, "west")):
                hosts, _ = app.usecases.queries.list_hosts()
                assert {h.host.labels["cluster"] for h in hosts} == {name}
                rec = app.usecases.advice.recommend_target(f"{name}-vm", Objective())
                app.usecases.review.decide(rec.id, Decision.APPROVE, "alice", "")
                app.usecases.migrations.execute(rec.id, "alice")
                wait_for(lambda app=app, rec=rec: app.usecases.review.get(rec.id).state
                         is RecommendationState.SUCCEEDED, 20, f"the {name} group's move never ended")
            assert (world.host_of("east-vm"), world.host_of("west-vm")) == ("e2", "w2")
            # a replica of the west group started on the east group's database by mistake does not serve
            wrong = subprocess.run(
                [sys.executable, "-m", "advisor.cli", "serve", "--clusters", "west", "--database-url",
                 postgres_server.url(databases[0]), "--data-dir", str(tmp_path / "wrong"), "--listen", "127.0.0.1:0",
                 "--metrics-listen", ""], capture_output=True, text=True, timeout=120, check=False)
            assert wrong.returncode != 0
            assert "holds hosts of clusters this replica group does not serve (setting clusters: west): cluster " \
                   "'east': e1, e2" in wrong.stderr, wrong.stderr
    finally:
        for name in databases:
            postgres_server.drop_database(name)
