"""The lab with real daemons, guests and Prometheus: up, status, dirty rate, migration, idempotence, down, recovery.

The tests share the session `lab` fixture and run in file order; the destructive ones repair the lab afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import time
import urllib.parse
import urllib.request
from pathlib import Path

import libvirt
import pytest

from advisor.lab import Lab, procs
from tests.support.lab import TEST_CACHE, make_lab

pytestmark = pytest.mark.integration

LAB_PROGRAMS = ("libvirtd", "qemu-system-x86_64", "prometheus", "prometheus-node-exporter",
                "prometheus-libvirt-exporter")


def readings(lab: Lab, guest: str, n: int) -> list[float]:
    return [lab.measure_dirty_rate(guest) for _ in range(n)]


def prometheus_query(url: str, query: str) -> list[dict[str, object]]:
    with urllib.request.urlopen(f"{url}/api/v1/query?query={urllib.parse.quote(query)}", timeout=5) as response:
        result: list[dict[str, object]] = json.load(response)["data"]["result"]
        return result


def lab_processes(root: Path) -> list[tuple[int, str]]:
    """Live processes that belong to the lab at `root`: by a path under it in their arguments, or by a mount of it."""
    found = []
    for pid in procs.all_pids():
        args = procs.cmdline(pid)
        if not args or os.path.basename(args[0]) not in LAB_PROGRAMS or not procs.alive(pid):
            continue
        try:
            mounts = Path(f"/proc/{pid}/mountinfo").read_text()
        except OSError:
            mounts = ""
        if any(str(root) in a for a in args) or f"{root.name}/hosts/" in mounts:
            found.append((pid, " ".join(args)[:100]))
    return found


def test_up_and_status(lab: Lab) -> None:
    status = lab.status()
    assert [h.name for h in status.hosts] == ["hv1", "hv2"]
    assert all(h.up and h.pid for h in status.hosts)
    assert all(h.uri.startswith("qemu+unix:///system?socket=/") for h in status.hosts)
    vm = status.guest("vm1")
    assert vm.state == "running" and vm.host in ("hv1", "hv2")
    assert status.prometheus_url is not None
    assert {s.name for s in status.services} == {"prometheus", "node-exporter", "libvirt-exporter-hv1",
                                                 "libvirt-exporter-hv2"}
    assert all(s.up for s in status.services)
    # The hosts are really distinct to libvirt (it refuses to migrate to "the same host").
    uuids = set()
    for host in status.hosts:
        conn = libvirt.open(host.uri)
        uuids.add(conn.getCapabilities().split("<uuid>")[1].split("</uuid>")[0])
        conn.close()
    assert len(uuids) == 2


def test_guest_alive(lab: Lab) -> None:
    assert lab.guest_alive("vm1", within_s=5)


def test_prometheus_scrapes_both_hosts(lab: Lab) -> None:
    url = lab.status().prometheus_url
    assert url is not None
    deadline = time.monotonic() + 30
    while True:
        up = {str(r["metric"]["host"]): r["value"][1]  # type: ignore[index]
              for r in prometheus_query(url, "libvirt_up")}
        if up == {"hv1": "1", "hv2": "1"} or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert up == {"hv1": "1", "hv2": "1"}


def test_dirty_rate_set_and_measured(lab: Lab) -> None:
    # Page-sampling reads 64 pages of a 128 MiB guest: 2 MiB/s steps and a spread of several MiB/s. Bounds are coarse.
    lab.set_dirty_rate("vm1", 0)
    time.sleep(1)
    idle = readings(lab, "vm1", 2)
    lab.set_dirty_rate("vm1", 24)
    time.sleep(1.5)
    busy = readings(lab, "vm1", 4)
    assert statistics.mean(idle) <= 6, idle
    assert 8 <= statistics.mean(busy) <= 48, busy
    assert lab.status().guest("vm1").dirty.rate_mib_s == 24


def test_live_migration_keeps_guest_alive_and_controllable(lab: Lab) -> None:
    lab.set_dirty_rate("vm1", 8)
    src = lab.host_of("vm1")
    assert src is not None
    dst = "hv2" if src == "hv1" else "hv1"
    conn = libvirt.open(lab.uri(src))
    try:
        started = time.monotonic()
        conn.lookupByName("vm1").migrateToURI3(lab.uri(dst), lab.migration_params(),
                                               libvirt.VIR_MIGRATE_LIVE | libvirt.VIR_MIGRATE_PEER2PEER)
        print(f"migration {src} -> {dst}: {time.monotonic() - started:.2f} s")
    finally:
        conn.close()
    assert lab.host_of("vm1") == dst
    assert lab.status().guest("vm1").host == dst
    assert lab.guest_alive("vm1", within_s=5)
    # The command pty is a new one on the destination; the lab finds it there.
    lab.set_dirty_rate("vm1", 32)
    time.sleep(1.5)
    busy = readings(lab, "vm1", 3)
    assert statistics.mean(busy) >= 8, busy
    lab.set_dirty_schedule("vm1", [(2, 0), (2, 16)], repeat=True)
    assert lab.status().guest("vm1").dirty.describe() == "schedule 2s@0, 2s@16 (repeat)"
    lab.set_dirty_rate("vm1", 0)


def test_up_again_is_idempotent(lab: Lab) -> None:
    before = lab.status()
    started = time.monotonic()
    after = lab.up(hosts=2, guests=1)
    assert time.monotonic() - started < 10
    assert [h.pid for h in after.hosts] == [h.pid for h in before.hosts]
    assert after.guest("vm1").host == before.guest("vm1").host
    assert [s.pid for s in after.services] == [s.pid for s in before.services]


def test_recovers_from_kill_9_of_a_daemon(lab: Lab) -> None:
    host = lab.host_of("vm1")
    assert host is not None
    victim = lab.status().host(host).pid
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    status = lab.up(hosts=2, guests=1)
    assert status.healthy, status
    assert status.host(host).pid != victim
    assert lab.guest_alive("vm1", within_s=5)


def test_recovers_from_kill_9_of_prometheus(lab: Lab) -> None:
    prometheus = next(s for s in lab.status().services if s.name == "prometheus")
    assert prometheus.pid is not None
    os.kill(prometheus.pid, signal.SIGKILL)
    assert lab.up(hosts=2, guests=1).healthy


def test_down_leaves_only_the_caches(lab: Lab) -> None:
    root = lab.root
    # one host forgotten, as by a run that lost its state and removed its directory: its daemon and QEMUs are
    # found by their mount of the lab's host directory and stopped all the same
    state = json.loads((root / "state.json").read_text())
    forgotten = sorted(state["hosts"])[-1]
    del state["hosts"][forgotten]
    (root / "state.json").write_text(json.dumps(state))
    shutil.rmtree(root / "hosts" / forgotten)
    assert any(f"/hosts/{forgotten}/" in Path(f"/proc/{pid}/mountinfo").read_text() for pid, _ in lab_processes(root))
    lab.down()
    deadline = time.monotonic() + 5  # orphans are reaped by init; give it a moment
    while lab_processes(root) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert lab_processes(root) == []
    assert not root.exists()  # the caches live outside the test lab's root
    assert (TEST_CACHE / "guest" / "initrd.gz").exists()
    # and back, for whatever test comes next
    assert lab.up(hosts=2, guests=1).healthy


def test_down_after_a_crashed_up(tmp_path: Path) -> None:
    """A half-done `up` (state written, nothing else) and a `down` of a lab that never ran both succeed."""
    lab = make_lab(tmp_path / "lab")
    lab.down()
    lab.root.mkdir(parents=True)
    (lab.root / "state.json").write_text(json.dumps({"hosts": {"hv1": {"tcp_port": None}}, "guests": {}}))
    (lab.root / "hosts" / "hv1" / "run").mkdir(parents=True)
    (lab.root / "hosts" / "hv1" / "run" / "libvirtd.pid").write_text(f"{os.getpid()}\n")  # not a libvirtd: spared
    lab.down()
    assert not lab.root.exists()
