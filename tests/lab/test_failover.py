"""Fail-over in the middle of a migration, in the lab: two `advisor serve` replicas on one PostgreSQL, the leader
moving the lab's guest by a slow live migration, killed by SIGKILL. The other replica takes the lease, finds the
operation under way, follows the hypervisors' job to its end and records it with what it measured: one operation for
the recommendation, the guest alive on exactly one host (its target), the timeline naming the replica that took
over and its term."""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest

from advisor.adapters.databases import open_database
from advisor.adapters.sql.store import SqlStore
from advisor.api.client import AdvisorClient
from advisor.api.v1 import advisor_pb2 as pb
from advisor.cli.demo import _ingest, lab_uri_pattern
from advisor.config import Settings
from advisor.domain.migration import MigrationRecord, Phase
from advisor.lab import Lab
from advisor.telemetry.hypervisors import HostConnection
from tests.integration.test_replicas import TAKEOVER_S, Replica, operator_token, replicas, wait_for
from tests.lab.test_migrations import GUEST, alive

pytestmark = pytest.mark.integration

# The lab's hosts are said to share a 4 MiB/s migration link, and the move is capped to it: the guest's ~90 MiB
# then take over 20 s, longer than a takeover (9-10 s after the kill with the default 10 s lease).
LINK_MIB_S = 4.0
KILL_AFTER_S = 2.0  # into the pre-copy


def config_file(tmp_path: Path, lab: Lab) -> Path:
    """The replicas' settings: the lab's sockets allowed, no collectors (the test pushes what they would)."""
    path = tmp_path / "advisor.toml"
    patterns = [*Settings().hypervisor_uri_patterns, lab_uri_pattern(lab)]
    path.write_text(f"[advisor]\nhypervisor_uri_patterns = {json.dumps(patterns)}\ndirty_rate_interval_s = 0\n"
                    "poll_interval_s = 0.25\nlog_level = \"info\"\n")
    return path


def hosts_running(lab: Lab, vm: str) -> list[str]:
    """The lab's hosts on which `vm` is active."""
    running = []
    for host in lab.status().hosts:
        connection = libvirt.open(host.uri)
        try:
            if vm in [d.name() for d in connection.listAllDomains(libvirt.VIR_CONNECT_LIST_DOMAINS_ACTIVE)]:
                running.append(host.name)
        finally:
            connection.close()
    return running


def stored(url: str, data_dir: Path, operation_id: str) -> MigrationRecord:
    """The operation's record with its timeline, as the database holds it (the API shows no timeline)."""
    database = open_database(url, data_dir)
    try:
        record = SqlStore(database).get_migration(operation_id)
    finally:
        database.close()
    assert record is not None
    return record


def elected(replica: Replica) -> dict[str, object]:
    return next(e for e in replica.log() if e["msg"] == "elected leader: taking over")


@dataclass
class FailOver:
    """What a fail-over in the middle of a move left: the operation as the API and the database show it, every
    operation of its recommendation, the recommendation, and the two replicas' elections."""

    target: str
    final: pb.Operation
    record: MigrationRecord
    operations: list[str]
    decided: pb.Recommendation
    new_leader: dict[str, object]
    old_leader: dict[str, object]
    took_s: float


def kill_the_leader_in(phase: int, lab: Lab, tmp_path: Path, url: str, *, dirty_mib_s: float) -> FailOver:
    """Two replicas; the guest, dirtying `dirty_mib_s`, moved by the leader on the advice of the follower; the
    leader killed KILL_AFTER_S after the operation reaches `phase`; the operation followed to its end."""
    if not lab.status().healthy or not lab.guest_alive(GUEST, within_s=10):
        lab.up(hosts=2, guests=1)
    lab.set_dirty_rate(GUEST, dirty_mib_s)
    source = lab.host_of(GUEST)
    assert source is not None
    target = "hv2" if source == "hv1" else "hv1"
    hosts = [HostConnection(h.name, h.uri, migration_address="127.0.0.1", network_bandwidth_mib_s=LINK_MIB_S,
                            migration_tls=h.migration_tls) for h in lab.status().hosts]
    token = operator_token(url)
    with replicas(tmp_path, url, args=("--config", str(config_file(tmp_path, lab)))) as (first, second):
        leader, follower = (first, second) if first.leads() else (second, first)
        with AdvisorClient(f"127.0.0.1:{leader.port}", token=token, timeout_s=60) as at_leader, \
                AdvisorClient(f"127.0.0.1:{follower.port}", token=token, timeout_s=60) as at_follower:
            _ingest(at_follower, hosts, print)  # the inventory, and samples of the guests as a collector reads them
            # the leader, which runs the move, has them from the follower through the database
            wait_for(lambda: {h.host.id for h in at_leader.list_hosts()} == {"hv1", "hv2"}, 10,
                     "the inventory pushed to the follower never reached the leader")
            rec = at_follower.recommend(pb.RecommendTargetRequest(vm_id=GUEST,
                                                                  objective=pb.Objective(max_downtime_ms=300)))
            (move,) = rec.moves
            assert (move.source_host_id, move.target_host_id) == (source, target), rec
            print(f"advised: {move.parameters}")
            at_follower.decide(rec.id, approve=True, reason="fail-over test")
            operation = at_follower.execute(rec.id).operation_id  # queued; the leader takes it and runs it
            wait_for(lambda: at_follower.operation(operation).phase == phase, 150,
                     f"the leader's operation never reached {pb.MigrationPhase.Name(phase)}")
            time.sleep(KILL_AFTER_S)
            leader.process.send_signal(signal.SIGKILL)
            leader.process.wait(10)
            assert at_follower.operation(operation).phase == phase
            took = wait_for(follower.leads, TAKEOVER_S, "the follower never took the lease")
            final = at_follower.operation(operation)
            deadline = time.monotonic() + 180
            while final.phase not in (pb.MIGRATION_PHASE_SUCCEEDED, pb.MIGRATION_PHASE_FAILED,
                                      pb.MIGRATION_PHASE_ABORTED):
                assert time.monotonic() < deadline, f"never ended: {final}"
                time.sleep(0.5)
                final = at_follower.operation(operation)
            operations = [o.operation_id for o in at_follower.list_migrations(running_only=False)
                          if o.recommendation_id == rec.id]
            decided = at_follower.get_recommendation(rec.id)
        new_leader, old_leader = elected(follower), elected(leader)
    lab.set_dirty_rate(GUEST, 0)
    record = stored(url, tmp_path / "reader", operation)
    print(f"\ntakeover {took:.1f} s after kill -9; " + " | ".join(f"{e.phase}: {e.message}" for e in record.timeline))
    return FailOver(target, final, record, operations, decided, new_leader, old_leader, took)


def followed_to_its_end(run: FailOver, lab: Lab, phase: Phase) -> None:
    """The next leader took over in a higher term, said so on the timeline while the move was in `phase`, watched
    the job to its end and recorded it as it saw it; one operation; the guest on its target alone, alive."""
    record, final = run.record, run.final
    timeline = " | ".join(f"{e.phase}: {e.message}" for e in record.timeline)
    assert final.phase == pb.MIGRATION_PHASE_SUCCEEDED, timeline
    assert run.operations == [record.operation_id]  # one operation, never run twice
    assert run.decided.state == pb.RECOMMENDATION_STATE_SUCCEEDED, run.decided
    assert int(str(run.new_leader["term"])) > int(str(run.old_leader["term"]))
    took_over = [e for e in record.timeline if "took over as leader" in e.message]
    assert [(e.phase, e.message) for e in took_over] == [
        (phase, f"replica {run.new_leader['replica']} took over as leader (term {run.new_leader['term']}): "
                "reconciling with the hypervisors")], timeline
    assert record.message.startswith(f"reconciled after restart: guest runs on target {run.target}"), timeline
    assert record.message.endswith("final figures from the last poll"), timeline  # it watched the job
    # the figures it measured, and none it did not (the downtime of a job it found under way)
    assert final.outcome.total_time_ms > LINK_MIB_S * 1000 and final.outcome.transferred_mib > 0, final.outcome
    assert not final.outcome.HasField("downtime_ms"), final.outcome
    assert hosts_running(lab, GUEST) == [run.target]
    assert alive(lab)


def test_kill_9_of_the_leader_mid_precopy_is_followed_to_its_end_by_the_next(lab: Lab, tmp_path: Path,
                                                                            postgres_url: str) -> None:
    run = kill_the_leader_in(pb.MIGRATION_PHASE_PRECOPY, lab, tmp_path, postgres_url, dirty_mib_s=0)
    followed_to_its_end(run, lab, Phase.PRECOPY)


def test_kill_9_of_the_leader_mid_postcopy_is_followed_to_its_end_by_the_next(lab: Lab, tmp_path: Path,
                                                                             postgres_url: str) -> None:
    """The guest dirties six times the link: pre-copy cannot converge, and the leader switches to post-copy (the
    advice's safety net, or the monitor's judgement); the next leader follows the post-copy, which cannot be
    aborted, to its end."""
    run = kill_the_leader_in(pb.MIGRATION_PHASE_POSTCOPY, lab, tmp_path, postgres_url, dirty_mib_s=6 * LINK_MIB_S)
    followed_to_its_end(run, lab, Phase.POSTCOPY)
