"""`advisor serve` as an operator runs it: a real process, configured by file, environment and flags."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from advisor.api.client import AdvisorClient, ClientError
from advisor.api.v1 import advisor_pb2 as pb
from advisor.cli import EXAMPLE, push_example
from advisor.lab.procs import free_port

pytestmark = pytest.mark.integration


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    # The log goes to a file, not a pipe: a pipe nobody reads fills up and blocks the server's logging.
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed by _stop
    process = subprocess.Popen(
        [sys.executable, "-m", "advisor.cli", "serve", *args],
        env={**os.environ, **env}, stderr=log, stdout=subprocess.DEVNULL, text=True,
    )
    process.log = log  # type: ignore[attr-defined]
    return process


def _token(data_dir: Path, name: str, role: str) -> str:
    """A token made the way an operator makes one: `advisor tokens create`, which prints the token alone."""
    made = subprocess.run([sys.executable, "-m", "advisor.cli", "tokens", "create", "--data-dir", str(data_dir),
                           "--name", name, "--role", role], capture_output=True, text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    (token,) = made.stdout.split()
    return token


def _stop(process: subprocess.Popen[str], timeout_s: float = 30) -> tuple[int, list[dict[str, object]]]:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    log = process.log  # type: ignore[attr-defined]
    log.seek(0)
    err = log.read()
    log.close()
    return process.returncode, [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_serve_stops_gracefully_on_sigterm_and_keeps_state(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "advisor.toml"
    # The file says one port, the environment overrides it; the flag gives the data directory.
    config.write_text('[advisor]\nlisten = "127.0.0.1:1"\nlog_level = "info"\ngrace_s = 5\n')
    env = {"ADVISOR_LISTEN": f"127.0.0.1:{port}", "ADVISOR_METRICS_LISTEN": ""}
    args = ["--config", str(config), "--data-dir", str(tmp_path / "data")]

    token = _token(tmp_path / "data", "scheduler-1", "scheduler")
    process = _start(args, env)
    try:
        with AdvisorClient(f"127.0.0.1:{port}", token=token) as client:
            client.wait_ready(30)
            push_example(client, json.loads(EXAMPLE.read_text()), time.time())
            rec = client.recommend(pb.RecommendTargetRequest(vm_id="db-1"))
    finally:
        code, logs = _stop(process)
    assert code == 0
    messages = [entry["msg"] for entry in logs]
    assert "serving" in messages and "stopped" in messages
    serving = next(entry for entry in logs if entry["msg"] == "serving")
    assert serving["port"] == port and serving["level"] == "info" and "cost_model" in serving
    assert (tmp_path / "data" / "advisor.sqlite3").exists()

    process = _start(args, env)
    try:
        with AdvisorClient(f"127.0.0.1:{port}", token=token) as client:
            client.wait_ready(30)
            assert len(list(client.list_hosts())) == 5
            assert client.get_recommendation(rec.id).summary == rec.summary
    finally:
        code, _ = _stop(process)
    assert code == 0


def _scaled(example: dict[str, Any], copies: int) -> dict[str, Any]:
    """The example cluster `copies` times over (host and VM ids suffixed): a recommendation then takes a while."""
    def copy(items: list[dict[str, Any]], k: int, *keys: str) -> list[dict[str, Any]]:
        return [{**item, **{key: f"{item[key]}-{k}" for key in keys if key in item}} for item in items]

    inventory, samples = example["inventory"], example["samples"]
    return {"inventory": {"hosts": [h for k in range(copies) for h in copy(inventory["hosts"], k, "id")],
                          "vms": [v for k in range(copies) for v in copy(inventory["vms"], k, "id", "hostId")]},
            "samples": {"hostSamples": [x for k in range(copies) for x in copy(samples["hostSamples"], k, "hostId")],
                        "vmSamples": [x for k in range(copies) for x in copy(samples["vmSamples"], k, "vmId")]}}


def test_sigterm_waits_for_the_handlers_of_clients_that_gave_up(tmp_path: Path) -> None:
    """32 clients that give up after 50 ms, then SIGTERM at once: every audit entry the server logged is in the
    store, and nothing ran on a closed store."""
    port = free_port()
    env = {"ADVISOR_LISTEN": f"127.0.0.1:{port}", "ADVISOR_METRICS_LISTEN": "", "ADVISOR_LOG_LEVEL": "info",
           "ADVISOR_GRACE_S": "1"}
    data = tmp_path / "data"
    token = _token(data, "scheduler-1", "scheduler")
    process = _start(["--data-dir", str(data)], env)
    try:
        with AdvisorClient(f"127.0.0.1:{port}", token=token) as client:
            client.wait_ready(120)  # a loaded machine starts slowly
            push_example(client, _scaled(json.loads(EXAMPLE.read_text()), 100), time.time())
        until = time.monotonic() + 1.5

        def impatient() -> None:
            with AdvisorClient(f"127.0.0.1:{port}", token=token, timeout_s=0.05) as quick:
                while time.monotonic() < until:
                    with contextlib.suppress(ClientError):  # a rebalance of 500 hosts takes a while
                        quick.call(quick.recommendations.PlanCluster,
                                   pb.PlanClusterRequest(goal=pb.CLUSTER_GOAL_REBALANCE, dry_run=True))

        threads = [threading.Thread(target=impatient) for _ in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        code, logs = _stop(process, 120)  # at once: handlers of the calls just given up are still running
    assert code == 0
    assert not [e for e in logs if e.get("level") == "error" or "closed database" in json.dumps(e)]
    logged = [e for e in logs if e["msg"] == "audit" and e.get("call") == "RecommendationService/PlanCluster"]
    with sqlite3.connect(data / "advisor.sqlite3") as db:
        (stored,) = db.execute("SELECT COUNT(*) FROM audit WHERE call = ?",
                               ("RecommendationService/PlanCluster",)).fetchone()
    assert logged and stored == len(logged)


def test_bad_configuration_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    config = tmp_path / "advisor.toml"
    config.write_text("max_concurrent_calls = 'lots'\n")
    result = subprocess.run(
        [sys.executable, "-m", "advisor.cli", "serve", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert "max_concurrent_calls must be a whole number" in result.stderr


def test_cli_client_commands_against_a_running_server(tmp_path: Path) -> None:
    port = free_port()
    sre = _token(tmp_path, "sre-1", "operator")
    reader = _token(tmp_path, "dashboard", "reader")
    process = _start(["--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path), "--metrics-listen", ""], {})
    server = ["--server", f"127.0.0.1:{port}"]

    def cli(*args: str, token: str = sre) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "advisor.cli", *args], capture_output=True, text=True,
                              timeout=60, check=False, env={**os.environ, "ADVISOR_TOKEN": token})

    try:
        with AdvisorClient(f"127.0.0.1:{port}") as client:
            client.wait_ready(30)
        anonymous = cli("hosts", *server, token="")
        assert anonymous.returncode == 1 and "UNAUTHENTICATED" in anonymous.stderr and "--token" in anonymous.stderr
        assert cli("push", str(EXAMPLE), *server).returncode == 0
        hosts = cli("hosts", *server)
        assert hosts.returncode == 0 and "hv-e" in hosts.stdout and "maintenance" in hosts.stdout
        rec = cli("recommend", "db-1", "--max-downtime-ms", "200", "--json", *server)
        assert rec.returncode == 0
        rec_id = json.loads(rec.stdout)["id"]
        shown = cli("recs", "show", rec_id, *server, token=reader)
        assert "Targets considered" in shown.stdout and "anti-affinity 1 (e.g. hv-b)" in shown.stdout
        denied = cli("recs", "approve", rec_id, *server, token=reader)
        assert denied.returncode == 1 and "PERMISSION_DENIED" in denied.stderr and "dashboard (reader)" in denied.stderr
        refused = cli("recs", "reject", rec_id, "--reason", "", *server)
        assert refused.returncode == 1 and "INVALID_ARGUMENT" in refused.stderr
        approved = cli("recs", "approve", rec_id, "--json", *server)
        assert approved.returncode == 0 and json.loads(approved.stdout)["decidedBy"] == "sre-1"
        assert json.loads(cli("hosts", "--json", *server).stdout)["hosts"][0]["host"]["id"] == "hv-a"
        listed = cli("recs", "list", "--state", "approved", *server)
        assert rec_id in listed.stdout
        drain = cli("plan", "drain", "hv-b", "--max-downtime-ms", "300", *server)
        assert drain.returncode == 0, drain.stderr
        assert "Drain hv-b" in drain.stdout and "recs execute" in drain.stdout
        assert cli("plan", "rebalance", "--max-moves", "2", *server).returncode == 0
        missing = cli("recommend", "ghost", *server)
        assert missing.returncode == 1 and "NOT_FOUND: vm_id: unknown VM 'ghost'" in missing.stderr
    finally:
        code, _ = _stop(process)
    assert code == 0
    unreachable = cli("hosts", "--server", f"127.0.0.1:{free_port()}")
    assert unreachable.returncode == 1 and "UNAVAILABLE" in unreachable.stderr


def test_one_server_per_data_directory_and_per_port(tmp_path: Path) -> None:
    port = free_port()
    first = _start(["--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "a"), "--metrics-listen", ""], {})
    try:
        with AdvisorClient(f"127.0.0.1:{port}") as client:
            client.wait_ready(30)
        published = json.loads((tmp_path / "a" / "advisor.json").read_text())
        assert published["pid"] == first.pid and published["grpc"] == f"127.0.0.1:{port}"
        other = free_port()
        same_dir = subprocess.run([sys.executable, "-m", "advisor.cli", "serve", "--listen", f"127.0.0.1:{other}",
                                   "--data-dir", str(tmp_path / "a"), "--metrics-listen", ""],
                                  capture_output=True, text=True, timeout=60, check=False)
        assert same_dir.returncode == 2
        assert f"another advisor (pid {first.pid}) is serving" in same_dir.stderr
        assert "Traceback" not in same_dir.stderr
        same_port = subprocess.run([sys.executable, "-m", "advisor.cli", "serve", "--listen", f"127.0.0.1:{port}",
                                    "--data-dir", str(tmp_path / "b"), "--metrics-listen", ""],
                                   capture_output=True, text=True, timeout=60, check=False)
        assert same_port.returncode == 2 and "cannot listen on" in same_port.stderr, same_port.stderr
        assert "Traceback" not in same_port.stderr
    finally:
        code, _ = _stop(first)
    assert code == 0 and not (tmp_path / "a" / "advisor.json").exists()


def test_kill_9_during_writes_leaves_the_database_whole(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    token = _token(data, "writer", "admin")
    process = _start(["--listen", f"127.0.0.1:{port}", "--data-dir", str(data), "--metrics-listen", ""], {})
    written: list[str] = []

    def write() -> None:
        with AdvisorClient(f"127.0.0.1:{port}", token=token, timeout_s=10) as client:
            try:
                while True:
                    rec = client.recommend(pb.RecommendTargetRequest(vm_id="db-1"))
                    written.append(rec.id)
                    client.push_inventory(pb.PushInventoryRequest(vms=[pb.Vm(
                        id=f"v{len(written)}", host_id="hv-e", memory_mib=64, vcpus=1)]))
            except ClientError:
                return  # the server is gone

    with AdvisorClient(f"127.0.0.1:{port}", token=token, timeout_s=10) as client:
        client.wait_ready(30)
        push_example(client, json.loads(EXAMPLE.read_text()), time.time())
    writer = threading.Thread(target=write)
    writer.start()
    time.sleep(3)
    process.kill()  # SIGKILL, while the writer's calls are in flight
    writer.join(30)
    process.wait(30)
    process.log.close()  # type: ignore[attr-defined]
    assert written
    db = sqlite3.connect(data / "advisor.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    again = _start(["--listen", f"127.0.0.1:{port}", "--data-dir", str(data), "--metrics-listen", ""], {})
    try:
        with AdvisorClient(f"127.0.0.1:{port}", token=token) as client:
            client.wait_ready(30)
            for rec_id in written[:-1]:  # every recommendation answered before the kill is there, whole
                assert client.get_recommendation(rec_id).moves[0].vm_id == "db-1"
    finally:
        code, _ = _stop(again)
    assert code == 0


def test_the_cli_never_shows_a_traceback(tmp_path: Path) -> None:
    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "advisor.cli", *args], capture_output=True, text=True,
                              timeout=60, check=False, input=stdin)

    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "advisor.sqlite3").write_bytes(b"this is not a database" * 100)
    cases = [
        (("recs", "frobnicate"), 2, "invalid choice"),
        (("push", str(tmp_path / "missing.json")), 2, "cannot read"),
        (("push", str(tmp_path)), 2, "cannot read"),
        (("tokens", "list", "--data-dir", str(corrupt)), 2, "cannot use this database"),
        (("tokens", "create", "--data-dir", str(tmp_path / "t"), "--name", "bad name!", "--role", "reader"), 2,
         "a token name is"),
        (("serve", "--data-dir", str(corrupt), "--listen", "127.0.0.1:0", "--metrics-listen", ""), 2,
         "cannot use this database"),
        (("serve", "--listen", "0.0.0.0:0", "--data-dir", str(tmp_path / "s"), "--metrics-listen", ""), 2,
         "beyond loopback"),
        (("hosts", "--timeout", "-1"), 2, "--timeout"),
        (("hosts", "--server", f"127.0.0.1:{free_port()}", "--timeout", "2"), 1, "UNAVAILABLE"),
    ]
    for args, code, fragment in cases:
        result = cli(*args)
        assert result.returncode == code, (args, result.stderr)
        assert fragment in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr, (args, result.stderr)
    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("advisor ")
    # Output piped into a reader that stops early (`advisor ... | head -1`): no complaint.
    piped = subprocess.run(f"{sys.executable} -m advisor.cli --help | head -1", shell=True, capture_output=True,
                           text=True, timeout=60, check=False)
    assert piped.stdout.startswith("usage: advisor") and "Traceback" not in piped.stderr


def _advisor(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "advisor.cli", *args], capture_output=True, text=True, timeout=120,
                          check=False)


def test_backup_under_load_and_restore_round_trip(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "data"
    env = {"ADVISOR_LISTEN": f"127.0.0.1:{port}", "ADVISOR_METRICS_LISTEN": ""}
    token = _token(data, "scheduler-1", "scheduler")
    process = _start(["--data-dir", str(data)], env)
    made: list[str] = []
    try:
        with AdvisorClient(f"127.0.0.1:{port}", token=token) as client:
            client.wait_ready(120)
            push_example(client, json.loads(EXAMPLE.read_text()), time.time())
            stop = threading.Event()

            def recommend() -> None:  # the load: a stored proposal after another while the backup runs
                while not stop.is_set():
                    made.append(client.recommend(pb.RecommendTargetRequest(vm_id="db-1")).id)

            writer = threading.Thread(target=recommend)
            writer.start()
            while len(made) < 3:
                time.sleep(0.05)
            before = list(made)
            backed_up = _advisor("backup", "--data-dir", str(data), "--output", str(tmp_path / "b.sqlite3"))
            time.sleep(0.5)
            stop.set()
            writer.join()
        again = _advisor("backup", "--data-dir", str(data), "--output", str(tmp_path / "b.sqlite3"))
        refused = _advisor("restore", "--data-dir", str(data), "--input", str(tmp_path / "b.sqlite3"))
    finally:
        code, _ = _stop(process)
    assert code == 0
    assert backed_up.returncode == 0, backed_up.stderr
    assert backed_up.stdout.startswith(f"wrote {tmp_path / 'b.sqlite3'}")
    assert again.returncode == 2 and "never overwrites" in again.stderr
    assert refused.returncode == 2 and "stop it first" in refused.stderr

    (tmp_path / "junk").write_text("not a database")
    junk = _advisor("restore", "--data-dir", str(data), "--input", str(tmp_path / "junk"))
    assert junk.returncode == 2 and "not an SQLite database" in junk.stderr
    restored = _advisor("restore", "--data-dir", str(data), "--input", str(tmp_path / "b.sqlite3"))
    assert restored.returncode == 0, restored.stderr
    assert "kept as" in restored.stdout and list(data.glob("advisor.sqlite3.before-restore-*"))

    process = _start(["--data-dir", str(data)], env)
    try:
        with AdvisorClient(f"127.0.0.1:{port}", token=token) as client:
            client.wait_ready(120)
            listed = {r.id for r in client.list_recommendations(pb.ListRecommendationsRequest(page_size=1000))
                      .recommendations}
    finally:
        code, _ = _stop(process)
    assert code == 0
    assert set(before) <= listed  # everything made before the backup began is in it
    assert made[-1] not in listed  # and what was made after it ended is not
