"""The SRE's command line against a real advisor over gRPC (the fake hypervisor behind it): every command in
tables and in JSON, the same thing as the API says, exit codes that mean something, colour only on a
terminal."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from advisor.adapters.fake_hypervisor import FakeWorld
from advisor.api.client import AdvisorClient
from advisor.api.v1 import advisor_pb2 as pb
from advisor.app import App
from advisor.cli.main import main
from advisor.domain.access import Role
from advisor.telemetry.collectors import DEFINITIONS_EVERY

pytestmark = pytest.mark.integration


@pytest.fixture
def sre(make_app: Callable[..., App], client_for: Callable[..., AdvisorClient], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> tuple[Callable[..., tuple[int, str, str]], AdvisorClient, FakeWorld]:
    world = FakeWorld(("a", "b", "c"), gated=True)
    for name in ("v1", "v2"):
        world.add_guest(name, "a")
    app = make_app(connect=world.connect, poll_interval_s=0.01)
    admin = client_for(app)
    admin.push_inventory(pb.PushInventoryRequest(
        hosts=[pb.Host(id=h, cpu_cores=16, memory_mib=32768, hypervisor_uri=f"fake://{h}") for h in "abc"],
        vms=[pb.Vm(id=v, host_id="a", memory_mib=4096, vcpus=2) for v in ("v1", "v2")]))
    assert app.server is not None
    operator = app.tokens.renew("sre-1", Role.OPERATOR)
    monkeypatch.setenv("ADVISOR_SERVER", f"127.0.0.1:{app.server.port}")

    def cli(*args: str, token: str = operator) -> tuple[int, str, str]:
        monkeypatch.setenv("ADVISOR_TOKEN", token)
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return cli, admin, world


def test_review_execute_watch_and_history_from_the_command_line(
        sre: tuple[Callable[..., tuple[int, str, str]], AdvisorClient, FakeWorld]) -> None:
    cli, api, world = sre
    # Nothing yet: one line saying so, not a header over nothing; --json the API's empty message.
    assert cli("recs", "list", "--state", "executing") == (0, "no recommendations in state executing\n", "")
    assert cli("recs", "list") == (0, "no recommendations\n", "")
    assert cli("recs", "history") == (0, "no migrations yet\n", "")
    assert cli("recs", "history", "--running") == (0, "no migration running\n", "")
    assert cli("vms", "--host", "b") == (0, "no VMs on host b\n", "")
    code, out, _ = cli("recs", "list", "--state", "executing", "--json")
    assert code == 0 and json.loads(out) == {}
    code, out, _ = cli("recs", "history", "--json")
    assert code == 0 and json.loads(out) == {}
    code, out, _ = cli("plan", "drain", "a", "--json")
    assert code == 0
    plan_id = json.loads(out)["id"]
    code, out, _ = cli("recs", "list")
    assert code == 0 and plan_id in out and "proposed" in out and "\x1b[" not in out  # no colour into a pipe
    assert "priority" in out.splitlines()[0]
    code, out, _ = cli("recs", "show", plan_id)
    assert code == 0
    assert "priority 1 (drain of a asked for)" in out and "is the VM's current host" in out
    assert "predicted:" in out and "s, downtime" in out and "Why:" in out and "technique" in out

    code, _, err = cli("recs", "execute", plan_id, "--all")
    assert code == 1 and "FAILED_PRECONDITION" in err and "approve it first" in err
    code, out, _ = cli("recs", "approve", plan_id, "--reason", "window 3")
    assert code == 0 and out == f"recommendation {plan_id} (drain:a) approved by sre-1: window 3\n"
    code, out, _ = cli("recs", "execute", plan_id, "--all", "--json")
    assert code == 0 and json.loads(out)["runRequestedBy"] == "sre-1"
    world.release.set()
    code, out, _ = cli("recs", "watch", plan_id)
    assert code == 0, out
    assert "succeeded" in out and "History:" in out
    code, out, _ = cli("recs", "history")
    rows = [line for line in out.splitlines() if " a->" in line]
    assert code == 0 and len(rows) == 2 and all(" succeeded " in r for r in rows)
    assert "Downtime of 2 succeeded: median" in out

    # The command line says what the API says.
    code, out, _ = cli("recs", "show", plan_id, "--json")
    assert json.loads(out) == json.loads(json.dumps(_as_dict(api.get_recommendation(plan_id))))
    code, out, _ = cli("recs", "history", "--json")  # the API's ListMigrationsResponse, every page in one
    assert [o["operationId"] for o in json.loads(out)["operations"]] == [o.operation_id for o in api.list_migrations(
        running_only=False)]


def test_cancel_abort_and_exit_codes(sre: tuple[Callable[..., tuple[int, str, str]], AdvisorClient, FakeWorld]) -> None:
    cli, api, _ = sre
    api.push_inventory(pb.PushInventoryRequest(vms=[pb.Vm(id=v, host_id="a", memory_mib=4096, vcpus=2,
                                                          postcopy_forbidden=True) for v in ("v1", "v2")]))
    samples = pb.PushSamplesRequest(vm_samples=[pb.VmSample(vm_id=v, dirty_rate_mib_s=1.0) for v in ("v1", "v2")])
    for sample in samples.vm_samples:
        sample.time.FromSeconds(int(time.time()))
    api.push_samples(samples)  # a pre-copy of a guest of unknown dirty rate is refused: it may never converge
    code, out, _ = cli("plan", "drain", "a", "--json")
    plan_id = json.loads(out)["id"]
    cli("recs", "approve", plan_id)
    cli("recs", "execute", plan_id, "--all")
    code, out, _ = cli("recs", "abort", plan_id, "--reason", "too slow")
    assert code == 0 and "abort" in out, out
    deadline = time.monotonic() + 10
    while api.get_recommendation(plan_id).state != pb.RECOMMENDATION_STATE_ABORTED:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    code, out, _ = cli("recs", "cancel", plan_id, "--reason", "change freeze", "--json")
    assert code == 0 and json.loads(out)["state"] == "RECOMMENDATION_STATE_CANCELLED"
    moves = json.loads(out)["moves"]
    assert [m["state"] for m in moves] == ["MOVE_STATE_ABORTED", "MOVE_STATE_DROPPED"]
    code, _, err = cli("recs", "cancel", plan_id, "--reason", "again")
    assert code == 1 and "nothing left to cancel" in err
    code, _, err = cli("recs", "watch", "no-such-thing")
    assert code == 1 and "NOT_FOUND" in err
    code, _, err = cli("recs", "approve", plan_id, token="")
    assert code == 1 and "UNAUTHENTICATED" in err
    with pytest.raises(SystemExit) as usage:
        cli("recs", "list", "--state", "pending")
    assert usage.value.code == 2
    code, out, _ = cli("plan", "drain", "a", "--dry-run", "--json")
    assert code == 0 and "id" not in json.loads(out)  # a preview: nothing stored
    assert len(api.list_recommendations(pb.ListRecommendationsRequest()).recommendations) == 1


def test_automation_from_the_command_line(sre: tuple[Callable[..., tuple[int, str, str]], AdvisorClient, FakeWorld],
                                          ) -> None:
    cli, api, _ = sre
    code, _, err = cli("automation", "set", "default", "--level", "full")
    assert code == 1 and "PERMISSION_DENIED" in err  # an operator may not: admins set levels
    admin = api.set_automation(pb.ClusterAutomation(cluster="default", level="partial", min_benefit_over_cost=2))
    assert admin.updated_by == "test-admin"
    code, out, _ = cli("automation", "show")
    assert code == 0 and "partial" in out and "2x" in out and "test-admin" in out
    code, out, _ = cli("automation", "show", "--json")
    assert json.loads(out)["clusters"][0]["level"] == "partial"


def _as_dict(message: object) -> object:
    from google.protobuf import json_format

    return json_format.MessageToDict(message)  # type: ignore[arg-type]


def test_colour_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from advisor.tables import paint, table

    class Tty:
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.setattr("sys.stdout", Tty())
    assert paint("failed", "red") == "\x1b[31mfailed\x1b[0m"
    painted = table(["state"], [["failed"], ["ok"]], colours={0: lambda s: "red" if s == "failed" else ""})
    assert "\x1b[31mfailed\x1b[0m" in painted
    monkeypatch.setenv("NO_COLOR", "1")
    assert paint("failed", "red") == "failed"


def test_a_dry_run_says_so_and_a_superseded_proposal_names_its_successor(
        sre: tuple[Callable[..., tuple[int, str, str]], AdvisorClient, FakeWorld]) -> None:
    cli, _, _ = sre
    code, out, _ = cli("recommend", "v1", "--dry-run")
    assert code == 0 and out.startswith("Recommendation (target:v1), dry run: not stored, nothing to approve, ")
    assert "proposed" not in out.splitlines()[0]
    code, out, _ = cli("recommend", "v1", "--json")
    first = json.loads(out)["id"]
    code, out, _ = cli("recommend", "v1", "--max-downtime-ms", "250", "--json")
    second = json.loads(out)
    assert second["moves"][0]["parameters"]["maxDowntimeMs"] == 250
    code, out, _ = cli("recs", "list", "--state", "superseded")
    assert code == 0 and first in out and "superseded" in out
    code, out, _ = cli("recs", "show", first)
    assert code == 0 and f"superseded by {second['id']}" in out
    code, out, _ = cli("plan", "consolidate", "--max-moves", "1")  # nothing it may empty: said, not stored
    assert code == 0 and out.startswith("Plan (consolidate), no move: not stored") and "Nothing emptied" in out
    code, _, err = cli("recommend", "v1", "--max-downtime-ms", "0")
    assert code != 0 and "INVALID_ARGUMENT" in err and "objective.max_downtime_ms" in err


def test_json_is_the_apis_message_and_text_fits_the_terminal(
        sre: tuple[Callable[..., tuple[int, str, str]], AdvisorClient, FakeWorld],
        monkeypatch: pytest.MonkeyPatch) -> None:
    cli, api, _ = sre
    code, out, _ = cli("hosts", "--json")
    assert code == 0 and json.loads(out) == _as_dict(pb.ListHostsResponse(hosts=list(api.list_hosts())))
    code, out, _ = cli("vms", "--json")
    assert code == 0 and [v["vm"]["id"] for v in json.loads(out)["vms"]] == ["v1", "v2"]
    code, out, _ = cli("plan", "drain", "a", "--json")
    plan_id = json.loads(out)["id"]
    monkeypatch.setenv("COLUMNS", "110")
    code, out, _ = cli("recs", "list")
    assert code == 0 and max(len(line) for line in out.splitlines()) <= 110 and plan_id in out and "\u2026" in out
    code, out, _ = cli("recs", "show", plan_id)
    assert code == 0 and max(len(line) for line in out.splitlines()) <= 110, out


def test_moves_are_numbered_from_1_and_decisions_answer_in_one_line(
        sre: tuple[Callable[..., tuple[int, str, str]], AdvisorClient, FakeWorld]) -> None:
    cli, api, world = sre
    code, out, _ = cli("plan", "drain", "a")
    plan_id = next(line.split()[1] for line in out.splitlines() if line.startswith("Plan "))
    assert [line.split()[0] for line in out.splitlines() if line.split()[1:2] in (["v1"], ["v2"])] == ["1", "2"]
    code, out, _ = cli("recs", "show", plan_id)
    assert "Move 1: " in out and "Move 2: " in out and "Move 0" not in out
    code, out, _ = cli("recs", "reject", plan_id, "--reason", "change freeze")
    assert code == 0 and out.splitlines() == [f"recommendation {plan_id} (drain:a) rejected by sre-1: change freeze"]
    code, out, _ = cli("plan", "drain", "a", "--json")
    plan_id = json.loads(out)["id"]
    code, out, _ = cli("recs", "approve", plan_id)
    assert code == 0 and out.splitlines() == [f"recommendation {plan_id} (drain:a) approved by sre-1"]
    code, _, err = cli("recs", "execute", plan_id, "--move", "3")
    assert code == 2 and f"--move 3: recommendation {plan_id} has 2 moves, numbered from 1" in err
    code, out, _ = cli("recs", "execute", plan_id, "--move", "2", "--json")
    assert code == 0 and json.loads(out)["vmId"] == api.get_recommendation(plan_id).moves[1].vm_id
    world.release.set()


def test_evacuate_a_dead_host_from_the_command_line(
        make_app: Callable[..., App], client_for: Callable[..., AdvisorClient], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    world = FakeWorld(("a", "b"))
    world.add_guest("v1", "a")
    app = make_app(connect=world.connect, poll_interval_s=0.01, dirty_rate_interval_s=3600,
                   evacuate_host_down_after_s=0.2)
    client_for(app).push_inventory(pb.PushInventoryRequest(
        hosts=[pb.Host(id=h, cpu_cores=16, memory_mib=32768, hypervisor_uri=f"fake://{h}") for h in "ab"],
        vms=[pb.Vm(id="v1", host_id="a", memory_mib=4096, vcpus=2, labels={"advisor.priority": "10"})]))
    (collector,) = [c for c in app.leader_tasks if c.name == "dirty-rate"]
    for _ in range(DEFINITIONS_EVERY):  # a round that reads the definitions, whatever its own thread ran
        collector.run_once()
    assert app.server is not None
    monkeypatch.setenv("ADVISOR_SERVER", f"127.0.0.1:{app.server.port}")
    monkeypatch.setenv("ADVISOR_TOKEN", app.tokens.renew("sre-1", Role.OPERATOR))

    def cli(*args: str) -> tuple[int, str, str]:
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    code, _, err = cli("plan", "evacuate", "a")
    assert code == 1 and "FAILED_PRECONDITION" in err and "a is up" in err and "drain it" in err
    world.kill("a")
    time.sleep(0.3)
    collector.run_once()
    code, out, _ = cli("plan", "evacuate", "a")
    assert code == 0 and "(evacuate:a)" in out and "a is down: its hypervisor has not answered" in out
    assert [line.split()[1:5] for line in out.splitlines() if " v1 " in line] == [["v1", "a", "b", "restart"]]
    plan_id = out.split()[1]
    assert cli("recs", "approve", plan_id)[0] == 0
    code, out, _ = cli("recs", "execute", plan_id, "--all", "--watch")
    assert code == 0 and "succeeded" in out, out
    assert world.host_of("v1") == "b" and "restart v1" in world.calls
    code, out, _ = cli("recs", "history")
    assert code == 0 and " restart " in out and "Downtime of" not in out  # a restart's downtime is not measured


def test_push_says_what_was_stored_before_its_samples_were_refused(
        make_app: Callable[..., App], client_for: Callable[..., AdvisorClient], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    app = make_app()
    assert app.server is not None
    monkeypatch.setenv("ADVISOR_SERVER", f"127.0.0.1:{app.server.port}")
    monkeypatch.setenv("ADVISOR_TOKEN", app.tokens.renew("pusher", Role.ADMIN))
    cluster = tmp_path / "cluster.json"
    cluster.write_text(json.dumps({
        "inventory": {"hosts": [{"id": "h1", "cpuCores": 8, "memoryMib": "16384"}],
                      "vms": [{"id": "v1", "hostId": "h1", "memoryMib": "1024", "vcpus": 1}]},
        "samples": {"vmSamples": [{"vmId": "ghost", "memoryUsedMib": 10}]}}))
    assert main(["push", str(cluster)]) == 1
    err = capsys.readouterr().err.splitlines()
    # the inventory is stored all the same: said, before why the samples were not
    assert err[0] == "advisor: inventory pushed (1 host, 1 VM); samples refused:"
    assert err[1].startswith("advisor: NOT_FOUND: vm_samples[0].vm_id: unknown VM 'ghost'")
    assert [h.host.id for h in client_for(app).list_hosts()] == ["h1"]
    # samples that cannot be read push nothing, not even the inventory
    cluster.write_text(json.dumps({"inventory": {"hosts": [{"id": "h2", "cpuCores": 8, "memoryMib": "16384"}]},
                                   "samples": {"vmSamples": [{"vmId": "v1", "memoryUsedMib": "lots"}]}}))
    assert main(["push", str(cluster)]) == 2
    assert [h.host.id for h in client_for(app).list_hosts()] == ["h1"]


def test_predict_says_what_qemu_holds_resident_where_a_sample_measured_it(
        sre: tuple[Callable[..., tuple[int, str, str]], AdvisorClient, FakeWorld]) -> None:
    cli, api, _ = sre
    code, out, _ = cli("predict", "vm", "v1", "--target", "b")
    assert code == 0 and "resident" not in out.splitlines()[0]  # not measured: not said
    sample = pb.VmSample(vm_id="v1", memory_used_mib=1000.0, resident_memory_mib=1790.0)
    sample.time.GetCurrentTime()
    api.push_samples(pb.PushSamplesRequest(vm_samples=[sample]))
    code, out, _ = cli("predict", "vm", "v1", "--target", "b")
    assert code == 0 and out.startswith("1000 MiB (1790 MiB resident in QEMU), dirty rate"), out
