"""Two `advisor serve` processes on one PostgreSQL (tests.support.postgres), each with its own data directory and
ports: both serve reads, recommendations and decisions; exactly one leads (gauge advisor_leader); an execute sent
to the other is carried out by the leader; and when the leader is killed, the other takes the lease (a leader cut
off from PostgreSQL: tests/integration/test_partition.py)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from advisor.api.client import AdvisorClient, ClientError
from advisor.api.v1 import advisor_pb2 as pb
from advisor.cli import EXAMPLE, push_example
from advisor.lab.procs import free_port
from tests.integration.test_serve_process import _start, _stop

pytestmark = pytest.mark.integration
TAKEOVER_S = 15.0  # the bound on a fail-over (the lease's TTL is 10 s)


@dataclass
class Replica:
    process: subprocess.Popen[str]
    port: int
    metrics_port: int

    def leads(self) -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10) as answer:
            found = re.search(r"^advisor_leader (\S+)$", answer.read().decode(), re.MULTILINE)
        assert found is not None, "no advisor_leader gauge"
        return float(found.group(1)) == 1.0

    def serving(self) -> bool:
        with grpc.insecure_channel(f"127.0.0.1:{self.port}") as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)

    def log(self) -> list[dict[str, Any]]:
        log = self.process.log  # type: ignore[attr-defined]
        log.seek(0)
        return [json.loads(line) for line in log.read().splitlines() if line.startswith("{")]


def operator_token(url: str) -> str:
    made = subprocess.run([sys.executable, "-m", "advisor.cli", "tokens", "create", "--database-url", url, "--name",
                           "sre", "--role", "operator"], capture_output=True, text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def ended(process: subprocess.Popen[str]) -> None:
    """Stop a replica still running (SIGTERM, its log read and closed), or close the log of one killed."""
    if process.poll() is None:
        _stop(process)
    elif not process.log.closed:  # type: ignore[attr-defined]
        process.log.close()  # type: ignore[attr-defined]


@contextmanager
def replicas(tmp_path: Path, url: str, count: int = 2, *, args: tuple[str, ...] = ()) -> Iterator[list[Replica]]:
    """`count` replicas of `advisor serve` on the database at `url`, each with its own data directory and ports
    (and `args` besides), ready to serve; stopped at the end (SIGTERM) unless killed meanwhile."""
    with ExitStack() as stack:
        started = []
        for i in range(count):
            port, metrics_port = free_port(), free_port()
            process = _start(["--listen", f"127.0.0.1:{port}", "--metrics-listen", f"127.0.0.1:{metrics_port}",
                              "--data-dir", str(tmp_path / f"replica-{i}"), "--database-url", url, *args],
                             {"ADVISOR_LOG_LEVEL": "info"})
            stack.callback(ended, process)
            started.append(Replica(process, port, metrics_port))
        for replica in started:
            with AdvisorClient(f"127.0.0.1:{replica.port}") as client:
                try:
                    client.wait_ready(60)
                except ClientError as error:  # say why: a replica that exited, or what its log shows
                    log = replica.process.log  # type: ignore[attr-defined]
                    log.seek(0)
                    raise AssertionError(f"replica on port {replica.port} not ready ({error}); exit status "
                                         f"{replica.process.poll()}; its log ends:\n{log.read()[-3000:]}") from None
        yield started


def unreachable_example() -> dict[str, Any]:
    """The example cluster, its hosts' hypervisors on a port where nothing listens: a migration fails at once."""
    example = json.loads(EXAMPLE.read_text())
    closed = free_port()
    for host in example["inventory"]["hosts"]:
        host["hypervisorUri"] = f"qemu+tcp://127.0.0.1:{closed}/system"
    return example


def wait_for(condition: Any, timeout_s: float, what: str) -> float:
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < timeout_s, what
        time.sleep(0.2)
    return time.monotonic() - began


def test_two_replicas_serve_one_leader_executes(tmp_path: Path, postgres_url: str) -> None:
    token = operator_token(postgres_url)
    example = unreachable_example()
    with replicas(tmp_path, postgres_url) as (first, second):
        assert [first.leads(), second.leads()].count(True) == 1 and first.serving() and second.serving()
        leader, follower = (first, second) if first.leads() else (second, first)
        clients = [AdvisorClient(f"127.0.0.1:{r.port}", token=token, timeout_s=30) for r in (first, second)]
        try:
            for client in clients:  # pushed to both (each would have it from the other within seconds)
                push_example(client, example, time.time())
            # both serve reads and recommendations, each finding what the other made
            made = [client.recommend(pb.RecommendTargetRequest(vm_id=vm))
                    for client, vm in zip(clients, ("db-1", "web-1"), strict=True)]
            for client in clients:
                assert len(list(client.list_hosts())) == 5
                assert {client.get_recommendation(r.id).id for r in made} == {r.id for r in made}
            # of eight deciders spread over the two, exactly one wins
            rec = made[0]
            outcomes: list[str] = []

            def decide(i: int) -> None:
                try:
                    clients[i % 2].decide(rec.id, approve=i % 3 != 0, reason="race")
                    outcomes.append("won")
                except ClientError as error:
                    outcomes.append(error.code if "only proposed ones" in error.details else error.details)

            threads = [threading.Thread(target=decide, args=(i,)) for i in range(8)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert outcomes.count("won") == 1 and set(outcomes) == {"won", "FAILED_PRECONDITION"}, outcomes
            target = made[1]
            clients[1].decide(target.id, approve=True)
            # an execute sent to the follower: the same answer as the leader's (queued), carried out by the leader
            via = clients[(first, second).index(follower)]
            operation = via.execute(target.id)
            assert operation.phase == pb.MIGRATION_PHASE_QUEUED and operation.operation_id
            wait_for(lambda: via.operation(operation.operation_id).phase == pb.MIGRATION_PHASE_FAILED, 30,
                     "the leader never ran the operation")
        finally:
            for client in clients:
                client.close()
        taken = [e for e in leader.log() if e["msg"] == "queued operation taken by the leader"]
        assert [e["operation"] for e in taken] == [operation.operation_id]
        elected = next(e for e in leader.log() if e["msg"] == "elected leader: taking over")
        assert taken[0]["replica"] == elected["replica"] and taken[0]["term"] == elected["term"]
        assert not [e for e in follower.log() if e["msg"] == "elected leader: taking over"]


def test_kill_9_of_the_leader_hands_the_lease_over_within_15_s(tmp_path: Path, postgres_url: str) -> None:
    with replicas(tmp_path, postgres_url) as (first, second):
        leader, follower = (first, second) if first.leads() else (second, first)
        assert not follower.leads()
        leader.process.send_signal(signal.SIGKILL)
        leader.process.wait(10)
        took = wait_for(follower.leads, TAKEOVER_S, "the follower never took the lease")
        elected = next(e for e in follower.log() if e["msg"] == "elected leader: taking over")
        before = next(e for e in leader.log() if e["msg"] == "elected leader: taking over")
        assert elected["term"] > before["term"]
        print(f"takeover after kill -9: {took:.1f} s")
        assert follower.serving()
        code, _ = _stop(follower.process)
        assert code == 0  # a clean stop, the lease released


SEEN_BY_ALL_S = 5.0  # the "within a few seconds": a replica exchanges samples every second


def test_inventory_and_samples_pushed_to_either_replica_are_seen_by_the_other(tmp_path: Path,
                                                                              postgres_url: str) -> None:
    token = operator_token(postgres_url)
    example = unreachable_example()
    with replicas(tmp_path, postgres_url) as (first, second):
        clients = [AdvisorClient(f"127.0.0.1:{r.port}", token=token, timeout_s=30) for r in (first, second)]
        try:
            push_example(clients[0], example, time.time())  # the inventory, then its samples, to the first alone
            took = wait_for(lambda: len(list(clients[1].list_hosts())) == len(example["inventory"]["hosts"]),
                            SEEN_BY_ALL_S, "the inventory pushed to the first never reached the second")
            print(f"the inventory pushed to replica 0 known by replica 1 after {took:.1f} s")
            # a change at the second (a VM removed) reaches the first
            clients[1].push_inventory(pb.PushInventoryRequest(removed_vm_ids=["web-2"]))
            wait_for(lambda: "web-2" not in {v.vm.id for v in clients[0].list_vms()}, SEEN_BY_ALL_S,
                     "a VM removed at the second is still known by the first")
            for rate, (to, by) in zip((37.5, 41.25), ((0, 1), (1, 0)), strict=True):
                request = pb.PushSamplesRequest()
                sample = request.vm_samples.add(vm_id="db-1", dirty_rate_mib_s=rate)
                sample.time.FromNanoseconds(time.time_ns())
                clients[to].push_samples(request)

                def seen(by: int = by, rate: float = rate) -> bool:
                    (vm,) = [v for v in clients[by].list_vms() if v.vm.id == "db-1"]
                    return vm.HasField("dirty_rate_mib_s") and vm.dirty_rate_mib_s == rate

                took = wait_for(seen, SEEN_BY_ALL_S, f"a sample pushed to replica {to} never reached replica {by}")
                print(f"a sample pushed to replica {to} seen by replica {by} after {took:.1f} s")
            # the example's samples, pushed to the first alone, are the second's too
            assert {v.vm.id for v in clients[1].list_vms() if v.HasField("cpu_utilization_ratio")} == {
                v.vm.id for v in clients[0].list_vms() if v.HasField("cpu_utilization_ratio")} != set()
        finally:
            for client in clients:
                client.close()
