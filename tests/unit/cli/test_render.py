"""What the command line prints: exact wording, tables that fit the terminal."""

from __future__ import annotations

import pytest

from advisor.api.v1 import advisor_pb2 as pb
from advisor.cli.render import (
    decision_line,
    disks_text,
    history_table,
    hosts_table,
    model_label,
    move_state_in,
    moves_table,
    parameters_text,
    progress_line,
    recommendations_table,
    render_recommendation,
    vms_table,
)
from advisor.tables import ELLIPSIS, table


def _move(vm: str, model: pb.ModelInfo) -> pb.Move:
    cost = pb.MigrationCost(technique=pb.TECHNIQUE_PRECOPY, converges=True, model=model)
    return pb.Move(vm_id=vm, source_host_id="a", target_host_id="b", predicted_cost=cost,
                   reasons=["target b: the best of 1 eligible host"])


def test_a_model_is_named_without_empty_parts() -> None:
    whole = pb.ModelInfo(name="lightgbm-cost", version="2.1.0", interval_kind="p10-p90 conformal")
    assert model_label(whole) == "lightgbm-cost 2.1.0, p10-p90 conformal"
    assert model_label(pb.ModelInfo(name="lightgbm-cost 2.0.0")) == "lightgbm-cost 2.0.0"
    out = render_recommendation(pb.Recommendation(id="r1", goal="drain:a", moves=[_move("v", pb.ModelInfo(
        name="lightgbm-cost 2.0.0"))]))
    assert "converges yes (lightgbm-cost 2.0.0)" in out and " , )" not in out


def test_moves_are_numbered_from_1_and_a_dry_run_has_no_state() -> None:
    model = pb.ModelInfo(name="m", version="1")
    rec = pb.Recommendation(goal="drain:a", state=pb.RECOMMENDATION_STATE_PROPOSED,
                            moves=[_move("v1", model), _move("v2", model)])
    out = render_recommendation(rec)
    assert out.startswith("Recommendation (drain:a), dry run: not stored, nothing to approve, priority")
    assert "proposed" not in out.splitlines()[0]
    assert "Move 1: v1" in out and "Move 2: v2" in out and "Move 0" not in out
    assert [line.split()[0] for line in moves_table(rec).splitlines()[2:]] == ["1", "2"]


@pytest.mark.parametrize(("state", "move", "shown"), [
    (pb.RECOMMENDATION_STATE_REJECTED, pb.MOVE_STATE_WAITING, "rejected"),  # stored before rejecting dropped
    (pb.RECOMMENDATION_STATE_REJECTED, pb.MOVE_STATE_DROPPED, "rejected"),
    (pb.RECOMMENDATION_STATE_SUPERSEDED, pb.MOVE_STATE_DROPPED, "superseded"),
    (pb.RECOMMENDATION_STATE_EXPIRED, pb.MOVE_STATE_DROPPED, "expired"),
    (pb.RECOMMENDATION_STATE_PROPOSED, pb.MOVE_STATE_WAITING, "waiting"),
    (pb.RECOMMENDATION_STATE_FAILED, pb.MOVE_STATE_WAITING, "waiting")])  # it may still run
def test_a_move_never_started_in_an_ended_recommendation_shows_its_end(state: int, move: int, shown: str) -> None:
    model = pb.ModelInfo(name="m", version="1")
    done, left = _move("v1", model), _move("v2", model)
    done.state, left.state = pb.MOVE_STATE_SUCCEEDED, move
    rec = pb.Recommendation(id="r", goal="drain:a", state=state, moves=[done, left])
    assert move_state_in(rec, done) == "succeeded" and move_state_in(rec, left) == shown
    out = render_recommendation(rec)
    assert "Move 1: v1 a -> b, succeeded" in out and f"Move 2: v2 a -> b, {shown}" in out
    assert [line.split()[8] for line in moves_table(rec).splitlines()[2:]] == ["succeeded", shown]  # state


def test_a_decision_is_one_line() -> None:
    rec = pb.Recommendation(id="r1", goal="target:v1", state=pb.RECOMMENDATION_STATE_REJECTED, decided_by="sre-1",
                            decision_reason="change freeze", moves=[_move("v1", pb.ModelInfo(name="m"))])
    assert decision_line(rec) == "recommendation r1 (target:v1) rejected by sre-1: change freeze"


def test_a_table_fits_its_width_by_cutting_the_free_text_column_only() -> None:
    rows = [["4f1c9a2b7d3e", "proposed", "Drain hv-b: " + "a long summary " * 10], ["short-id", "approved", "ok"]]
    out = table(["id", "state", "summary"], rows, fit=2, width=50)
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 50
    assert lines[2].startswith("4f1c9a2b7d3e  proposed  Drain hv-b: a") and lines[2].endswith(ELLIPSIS)
    assert lines[3].endswith("ok")
    assert table(["id", "state", "summary"], rows, fit=2) == table(["id", "state", "summary"], rows, width=None)


def test_a_table_follows_the_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    recs = [pb.Recommendation(id=f"{i:012x}", goal="rebalance", summary="Balance: " + "word " * 60)
            for i in range(3)]
    monkeypatch.delenv("COLUMNS", raising=False)
    assert len(recommendations_table(recs).splitlines()[2]) > 300  # into a pipe: whole lines
    monkeypatch.setenv("COLUMNS", "120")
    lines = recommendations_table(recs).splitlines()
    assert max(len(line) for line in lines) <= 120 and all(f"{i:012x}" in lines[2 + i] for i in range(3))


def test_vms_show_their_disks_and_networks_and_the_table_fits_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    disks = [pb.Disk(target="vda", size_mib=20480, used_mib=4096, shared=False, write_rate_mib_s=2.0),
             pb.Disk(target="vdb", size_mib=1024, used_mib=10, shared=True),
             pb.Disk(target="vdc", size_mib=512, used_mib=512, shared=False)]
    vm = pb.VmStatus(vm=pb.Vm(id="db-1", host_id="a", memory_mib=4096, vcpus=2, disks=disks,
                              networks=["br0", "vlan10"]))
    bare = pb.VmStatus(vm=pb.Vm(id="web", host_id="b", memory_mib=1024, vcpus=1))
    assert disks_text(disks) == "vda local 4096/20480 MiB 2.0 MiB/s, vdb shared 1024 MiB, vdc local 512/512 MiB"
    wide = vms_table([vm, bare])
    header, _, first, second = wide.splitlines()
    assert header.split()[-3:] == ["disks", "networks", "anti-affinity"]
    assert "20992" in first and "vda local 4096/20480 MiB 2.0 MiB/s" in first and "br0,vlan10" in first
    assert second.split()[6:9] == ["-", "-", "-"]  # no local disk, no disk, no network
    monkeypatch.setenv("COLUMNS", "100")
    narrow = vms_table([vm, bare])
    assert max(len(line) for line in narrow.splitlines()) <= 100 and ELLIPSIS in narrow


def test_hosts_show_their_tls_and_networks() -> None:
    host = pb.HostStatus(host=pb.Host(id="hv-1", cpu_cores=16, memory_mib=65536, migration_tls=True,
                                      networks=["br0", "sriov-a"], local_disk_free_mib=500_000))
    row = hosts_table([host]).splitlines()[2]
    assert "500000" in row and " yes " in row and "br0,sriov-a" in row


def test_a_restart_shows_its_predicted_steps_and_an_unknown_downtime() -> None:
    cost = pb.MigrationCost(total_time_ms=pb.Estimate(low=505, median=3110, high=10000), converges=True,
                            transferred_mib=pb.Estimate(low=0.002, median=0.002, high=0.002),
                            model=pb.ModelInfo(name="restart-steps", version="1.0.0"))
    move = pb.Move(vm_id="v", source_host_id="dead", target_host_id="b", predicted_cost=cost,
                   parameters=pb.MigrationParameters(kind=pb.MOVE_KIND_RESTART))
    rec = pb.Recommendation(goal="evacuate:dead", moves=[move, move])
    out = render_recommendation(rec)
    assert "predicted: 3.1 [0.5-10.0] s to the guest running and checked; downtime not known" in out
    row = moves_table(rec).splitlines()[2].split()
    assert row[4] == "restart" and row[7] == "-"  # technique; downtime ms


@pytest.mark.parametrize(("parameters", "expected"), [
    (pb.MigrationParameters(technique=pb.TECHNIQUE_PRECOPY, bandwidth_mib_s=1000, max_downtime_ms=300,
                            deadline_ms=60_000, postcopy_after_ms=9000, tls=True, migrate_disks=["vda", "vdb"]),
     "precopy, bandwidth 1000 MiB/s, max downtime 300 ms, deadline 60 s, switch to post-copy after 9.0 s, over TLS, "
     "copying its local disks vda, vdb"),
    (pb.MigrationParameters(technique=pb.TECHNIQUE_COLD, bandwidth_mib_s=100, shutdown_timeout_ms=60_000,
                            migrate_disks=["vda"]),
     "cold, bandwidth 100 MiB/s, shut down within 60 s, then forced off, plain TCP, copying its local disk vda"),
    (pb.MigrationParameters(kind=pb.MOVE_KIND_RESTART),
     "restart: defined and started on the target from its last known definition"),
])
def test_a_moves_parameters_say_its_transport_and_the_disks_it_copies(parameters: pb.MigrationParameters,
                                                                      expected: str) -> None:
    assert parameters_text(parameters) == expected


def test_a_table_still_too_wide_leaves_out_empty_columns_then_the_rightmost_and_says_which() -> None:
    headers = ["id", "state", "networks", "cores", "CPU model"]
    rows = [["hv-a", "maintenance", "-", 16, "Cascadelake-Server"], ["hv-b", "", "", 32, "Skylake-Server"]]
    assert table(headers, rows, width=None).splitlines()[0].split() == ["id", "state", "networks", "cores", "CPU",
                                                                          "model"]  # into a pipe: everything
    lines = table(headers, rows, width=40).splitlines()
    assert lines[0].split() == ["id", "state", "cores"] and lines[2].split() == ["hv-a", "maintenance", "16"]
    note = "Left out to fit 40 columns: networks (empty), CPU model; a wider terminal shows them."
    assert " ".join(lines[4:]) == note
    assert max(len(line) for line in lines) <= 40
    narrow = table(headers, rows, width=12).splitlines()
    assert narrow[0] == "id" and narrow[2:4] == ["hv-a", "hv-b"]  # the first column stays, whatever the width
    assert "state, networks (empty), cores, CPU model" in " ".join(narrow[4:])
    assert table(headers, rows, width=80) == table(headers, rows, width=None)  # wide enough: nothing left out


def test_every_listing_fits_an_80_column_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    hosts = [pb.HostStatus(host=pb.Host(id=f"hv-{i}", cpu_cores=16, memory_mib=65536, cpu_model="Cascadelake-Server"),
                           vm_count=3, allocated_vcpus=20, allocated_memory_mib=28672, cpu_utilization_ratio=0.82)
             for i in range(3)]
    recs = [pb.Recommendation(id=f"{i:012x}", goal="drain:hv-b", summary="Drain hv-b: " + "word " * 40,
                              automation_level="manual", moves=[_move("v1", pb.ModelInfo(name="m"))])
            for i in range(2)]
    ops = [pb.Operation(operation_id="d877ff783d77", vm_id="vm1", source_host_id="hv1", target_host_id="hv2",
                        phase=pb.MIGRATION_PHASE_SUCCEEDED,
                        outcome=pb.MigrationOutcome(total_time_ms=13461, downtime_ms=330))]
    monkeypatch.setenv("COLUMNS", "80")
    for out in (hosts_table(hosts), recommendations_table(recs), history_table(ops)):
        assert max(len(line) for line in out.splitlines()) <= 80, out
        assert out.splitlines()[0].startswith(("host", "id", "operation")) and "Left out to fit 80 columns" in out


def test_a_watched_move_without_job_statistics_shows_its_figures_as_unknown_not_0() -> None:
    never_ran = pb.MigrationProgress(phase=pb.MIGRATION_PHASE_FAILED, message="cannot start: source hv-a's name "
                                     "does not resolve (incident 5060f1fe; details in the advisor's log)")
    running = pb.MigrationProgress(phase=pb.MIGRATION_PHASE_PRECOPY, elapsed_ms=3500, iteration=1, memory_total_mib=129,
                                   memory_remaining_mib=117.4, dirty_rate_mib_s=0.0, transfer_rate_mib_s=26.5)
    unknown, known = progress_line(never_ran), progress_line(running)
    assert "round   -         - MiB left  dirty      - MiB/s  sent      - MiB/s" in unknown and "0.0 MiB" not in unknown
    assert "round   1     117.4 MiB left  dirty    0.0 MiB/s  sent   26.5 MiB/s" in known
    assert len(unknown.split(" MiB left")[0]) == len(known.split(" MiB left")[0])  # the columns stay aligned
