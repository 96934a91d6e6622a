"""`advisor serve` as an operator runs it: a real process, configured by file, environment and flags."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from advisor.api.client import AdvisorClient
from advisor.api.v1 import advisor_pb2 as pb
from advisor.cli import EXAMPLE, push_example

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "advisor.cli", "serve", *args],
        env={**os.environ, **env}, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )


def _stop(process: subprocess.Popen[str]) -> tuple[int, list[dict[str, object]]]:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=30)
    return process.returncode, [json.loads(line) for line in err.splitlines() if line.startswith("{")]


def test_serve_stops_gracefully_on_sigterm_and_keeps_state(tmp_path: Path) -> None:
    port = _free_port()
    config = tmp_path / "advisor.toml"
    # The file says one port, the environment overrides it; the flag gives the data directory.
    config.write_text('[advisor]\nlisten = "127.0.0.1:1"\nlog_level = "info"\ngrace_s = 5\n')
    env = {"ADVISOR_LISTEN": f"127.0.0.1:{port}", "ADVISOR_METRICS_LISTEN": ""}
    args = ["--config", str(config), "--data-dir", str(tmp_path / "data")]

    process = _start(args, env)
    try:
        with AdvisorClient(f"127.0.0.1:{port}") as client:
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
        with AdvisorClient(f"127.0.0.1:{port}") as client:
            client.wait_ready(30)
            assert len(list(client.list_hosts())) == 5
            assert client.get_recommendation(rec.id).summary == rec.summary
    finally:
        code, _ = _stop(process)
    assert code == 0


def test_bad_configuration_exits_2_with_a_clear_message(tmp_path: Path) -> None:
    config = tmp_path / "advisor.toml"
    config.write_text("max_workers = 'lots'\n")
    result = subprocess.run(
        [sys.executable, "-m", "advisor.cli", "serve", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 2
    assert "max_workers must be a int" in result.stderr


def test_cli_client_commands_against_a_running_server(tmp_path: Path) -> None:
    port = _free_port()
    process = _start(["--listen", f"127.0.0.1:{port}", "--data-dir", str(tmp_path), "--metrics-listen", ""], {})
    server = ["--server", f"127.0.0.1:{port}"]

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "advisor.cli", *args], capture_output=True, text=True,
                              timeout=60, check=False)

    try:
        with AdvisorClient(f"127.0.0.1:{port}") as client:
            client.wait_ready(30)
        assert cli("push", str(EXAMPLE), *server).returncode == 0
        hosts = cli("hosts", *server)
        assert hosts.returncode == 0 and "hv-e" in hosts.stdout and "maintenance" in hosts.stdout
        rec = cli("recommend", "db-1", "--max-downtime-ms", "200", "--json", *server)
        assert rec.returncode == 0
        rec_id = json.loads(rec.stdout)["id"]
        shown = cli("recs", "show", rec_id, *server)
        assert "Targets considered" in shown.stdout and "anti-affinity group 'db'" in shown.stdout
        refused = cli("recs", "reject", rec_id, "--actor", "sre", "--reason", "", *server)
        assert refused.returncode == 1 and "INVALID_ARGUMENT" in refused.stderr
        assert cli("recs", "approve", rec_id, "--actor", "sre", *server).returncode == 0
        listed = cli("recs", "list", "--state", "approved", *server)
        assert rec_id in listed.stdout
        drain = cli("plan", "drain", "hv-b", "--max-downtime-ms", "300", *server)
        assert drain.returncode == 0, drain.stderr
        assert "Drain hv-b" in drain.stdout and "migrate execute" in drain.stdout
        assert cli("plan", "rebalance", "--max-moves", "2", *server).returncode == 0
        missing = cli("recommend", "ghost", *server)
        assert missing.returncode == 1 and "NOT_FOUND: vm_id: unknown VM 'ghost'" in missing.stderr
    finally:
        code, _ = _stop(process)
    assert code == 0
    unreachable = cli("hosts", "--server", f"127.0.0.1:{_free_port()}")
    assert unreachable.returncode == 1 and "UNAVAILABLE" in unreachable.stderr
