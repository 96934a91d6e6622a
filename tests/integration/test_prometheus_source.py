"""The Prometheus source against a real Prometheus 2.42 server, started here on 127.0.0.1 with a throw-away TSDB
that `promtool tsdb create-blocks-from openmetrics` filled with two hours of history before the server started.

The history: node_exporter-style series for hosts a and b plus an instance nobody knows, libvirt-exporter-style
series for vm-1..vm-3 plus a domain nobody knows, and the advisor's dirty-rate gauge. Host a reboots 60 s and vm-2
restarts 45 s before the end (counter resets), host b has no MemAvailable (missing series), vm-3's exporter went
quiet 150 s before the end (stale), vm-2's last dirty-rate sample is NaN.

Why the tolerances are tight (1e-6): every counter grows exactly linearly between resets, samples are 15 s apart,
and queries are evaluated 5 s after the last sample, so each 2-minute rate() window starts within 1.1 scrape
intervals of its first sample and Prometheus extrapolates over the whole window: the rate is exact up to the 6
decimals written. A missed reset would be off by orders of magnitude, a wrong unit by a factor of 2^20.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_api_client import PrometheusConnect

from advisor.adapters.prometheus.queries import BYTES_TO_MIB, MetricQuery, PrometheusError, PrometheusQueries
from advisor.adapters.prometheus.source import PrometheusSource
from advisor.domain.model import MIB, VmSample
from advisor.lab.procs import free_port, wait_for_http

pytestmark = pytest.mark.integration

STEP = 15
HOURS = 2
HOST_IDS = {"10.0.0.1:9100": "host-a", "10.0.0.2:9100": "host-b"}
HOSTS = ("host-a", "host-b")
VMS = ("vm-1", "vm-2", "vm-3")
TOL = 1e-6


def dirty_vm1(t: float, start: float) -> float:
    return 48.0 + 8.0 * math.sin(2 * math.pi * (t - start) / 1800.0)


def _counter(rate: float, t: int, start: int, reset_after: int | None, base: float = 1e5) -> float:
    """A counter growing at `rate` per second that restarted from 0 just after the sample at `reset_after`."""
    if reset_after is not None and t > reset_after:
        return rate * (t - reset_after)
    return base + rate * (t - start)


def write_history(path: Path, end: int) -> None:
    start = end - HOURS * 3600
    times = range(start, end + 1, STEP)
    lines: list[str] = []

    def family(name: str, kind: str) -> None:
        lines.append(f"# TYPE {name} {kind}")

    def series(sample: str, values: Callable[[int], float | None]) -> None:
        for t in times:
            v = values(t)
            if v is not None:
                lines.append(f"{sample} {'NaN' if math.isnan(v) else f'{v:.6f}'} {t}")

    reboot_a = end - 60  # host-a counters restart after this sample
    nodes = {"10.0.0.1:9100": ((0.7, 0.8), reboot_a), "10.0.0.2:9100": ((0.4, 0.4), None),
             "10.0.0.9:9100": ((0.5, 0.5), None)}
    family("node_cpu_seconds", "counter")
    for inst, (idle, reset) in nodes.items():
        for cpu, idle_rate in enumerate(idle):
            for mode, rate in (("idle", idle_rate), ("user", 1 - idle_rate)):
                series(f'node_cpu_seconds_total{{instance="{inst}",job="node",cpu="{cpu}",mode="{mode}"}}',
                       lambda t, r=rate, rs=reset: _counter(r, t, start, rs))
    family("node_memory_MemTotal_bytes", "gauge")
    for inst, total in (("10.0.0.1:9100", 16), ("10.0.0.2:9100", 32), ("10.0.0.9:9100", 8)):
        series(f'node_memory_MemTotal_bytes{{instance="{inst}",job="node"}}', lambda t, g=total: g * 1024.0 * MIB)
    family("node_load1", "gauge")  # none for host-b: its load is unmeasured
    for inst, load in (("10.0.0.1:9100", 3.0), ("10.0.0.9:9100", 0.5)):
        series(f'node_load1{{instance="{inst}",job="node"}}', lambda t, g=load: g)
    family("node_memory_MemAvailable_bytes", "gauge")  # none for host-b: the missing series
    for inst, avail in (("10.0.0.1:9100", 12), ("10.0.0.9:9100", 4)):
        series(f'node_memory_MemAvailable_bytes{{instance="{inst}",job="node"}}', lambda t, g=avail: g * 1024.0 * MIB)
    nics = {"10.0.0.1:9100": {"eth0": (10, 5), "eth1": (5, 2.5), "lo": (1000, 1000)},
            "10.0.0.2:9100": {"eth0": (1, 2), "lo": (500, 500)}, "10.0.0.9:9100": {"eth0": (3, 3)}}
    for direction, index in (("receive", 0), ("transmit", 1)):
        family(f"node_network_{direction}_bytes", "counter")
        for inst, devices in nics.items():
            for dev, rates in devices.items():
                reset = reboot_a if inst == "10.0.0.1:9100" else None
                series(f'node_network_{direction}_bytes_total{{instance="{inst}",job="node",device="{dev}"}}',
                       lambda t, r=rates[index] * MIB, rs=reset: _counter(r, t, start, rs, base=7e9))

    restart_vm2 = end - 45
    quiet_vm3 = end - 150  # vm-3's libvirt series end here
    # domain -> (host exporter, vcpus, cpu seconds per second, memory GiB, reset, last sample)
    guests = {
        "vm-1": ("10.0.0.1:9177", 2, 1.0, 2, None, end),
        "vm-2": ("10.0.0.1:9177", 1, 0.3, 1, restart_vm2, end),
        "vm-3": ("10.0.0.2:9177", 4, 2.0, 4, None, quiet_vm3),
        "vm-zombie": ("10.0.0.1:9177", 1, 0.9, 1, None, end),
    }

    def until(last: int, f: Callable[[int], float]) -> Callable[[int], float | None]:
        return lambda t: f(t) if t <= last else None

    family("libvirt_domain_info_cpu_time_seconds", "counter")
    for dom, (inst, _, rate, _, reset, last) in guests.items():
        series(f'libvirt_domain_info_cpu_time_seconds_total{{instance="{inst}",job="libvirt",domain="{dom}"}}',
               until(last, lambda t, r=rate, rs=reset: _counter(r, t, start, rs, base=5e4)))
    family("libvirt_domain_info_virtual_cpus", "gauge")
    for dom, (inst, vcpus, _, _, _, last) in guests.items():
        series(f'libvirt_domain_info_virtual_cpus{{instance="{inst}",job="libvirt",domain="{dom}"}}',
               until(last, lambda t, n=vcpus: float(n)))
    family("libvirt_domain_info_memory_usage_bytes", "gauge")
    for dom, (inst, _, _, gib, _, last) in guests.items():
        series(f'libvirt_domain_info_memory_usage_bytes{{instance="{inst}",job="libvirt",domain="{dom}"}}',
               until(last, lambda t, g=gib: g * 1024.0 * MIB))
    family("libvirt_domain_memory_stats_rss_bytes", "gauge")  # vm-1's only: what QEMU holds resident
    series('libvirt_domain_memory_stats_rss_bytes{instance="10.0.0.1:9177",job="libvirt",domain="vm-1"}',
           lambda t: 1190.0 * MIB)
    family("advisor_vm_dirty_rate_bytes_per_second", "gauge")
    labels = 'instance="127.0.0.1:9464",job="advisor"'
    dirty = "advisor_vm_dirty_rate_bytes_per_second"
    series(f'{dirty}{{{labels},vm="vm-1"}}', lambda t: dirty_vm1(t, start) * MIB)
    series(f'{dirty}{{{labels},vm="vm-2"}}', lambda t: math.nan if t == end else 2.5 * MIB)
    series(f'{dirty}{{{labels},vm="vm-3"}}', lambda t: 1.25 * MIB)
    series(f'{dirty}{{{labels},vm="vm-gone"}}', lambda t: 3.0 * MIB)
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")


class PromServer:
    """One Prometheus process of ours: started, stopped, paused and resumed by its pid only."""

    def __init__(self, directory: Path, end: int) -> None:
        self.directory = directory
        self.end = end
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        (self.directory / "prometheus.yml").write_text("global:\n  scrape_interval: 1m\nscrape_configs: []\n")
        log = open(self.directory / "prometheus.log", "ab")  # noqa: SIM115 - the child keeps it
        self.process = subprocess.Popen(
            ["prometheus", f"--config.file={self.directory / 'prometheus.yml'}",
             f"--storage.tsdb.path={self.directory / 'data'}", f"--web.listen-address=127.0.0.1:{self.port}",
             "--storage.tsdb.retention.time=30d"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=self.directory,
        )
        log.close()
        try:
            wait_for_http("prometheus", f"{self.url}/-/ready", self.process, timeout_s=30, interval_s=0.05)
        except (RuntimeError, TimeoutError) as failed:
            raise RuntimeError(f"{failed}: {(self.directory / 'prometheus.log').read_text()[-2000:]}") from None

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)  # in case it was paused
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def pause(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGCONT)


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromServer]:
    directory = tmp_path_factory.mktemp("prometheus")
    end = int(time.time()) // STEP * STEP - 2 * STEP
    write_history(directory / "history.om", end)
    done = subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(directory / "history.om"),
         str(directory / "data")], capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    server = PromServer(directory, end)
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _source(
    prom: PromServer, clock: Clock | None = None, timeout_s: float = 5.0, **options: object
) -> PrometheusSource:
    queries = PrometheusQueries(host_ids=HOST_IDS, **options)  # type: ignore[arg-type]
    return PrometheusSource(prom.url, queries, timeout_s=timeout_s, clock=clock or Clock(prom.end + 5))


def test_poll_reads_hosts_and_vms_and_counts_what_it_skips(prom: PromServer) -> None:
    with _source(prom) as source:
        result = source.poll(HOSTS, VMS)
    end = prom.end
    assert result.health.ok and result.health.consecutive_failures == 0
    assert result.as_of_s == end + 5 and result.age_s == 0 and not result.from_cache
    hosts = {s.host_id: s for s in result.host_samples}
    vms = {s.vm_id: s for s in result.vm_samples}
    assert set(hosts) == {"host-a", "host-b"}
    a, b = hosts["host-a"], hosts["host-b"]
    assert a.time_s == b.time_s == end  # the newest raw sample, not the evaluation time
    assert a.cpu_utilization == pytest.approx(0.25, abs=TOL)  # idle 0.7 and 0.8, across the reboot
    assert a.memory_used_mib == pytest.approx(4096, abs=TOL)  # 16 GiB - 12 GiB, bytes -> MiB
    assert a.network_rx_mib_s == pytest.approx(15, abs=TOL)  # eth0 10 + eth1 5; lo excluded
    assert a.network_tx_mib_s == pytest.approx(7.5, abs=TOL)
    assert b.cpu_utilization == pytest.approx(0.6, abs=TOL)
    assert b.memory_used_mib is None  # no MemAvailable: unmeasured, not 0
    assert a.load_per_cpu == pytest.approx(1.5, abs=TOL)  # a load of 3 over 2 CPUs
    assert b.load_per_cpu is None  # no node_load1: unmeasured, not 0
    assert (b.network_rx_mib_s, b.network_tx_mib_s) == pytest.approx((1, 2), abs=TOL)
    assert a.power_w is None

    assert set(vms) == {"vm-1", "vm-2", "vm-3"}
    v1, v2, v3 = vms["vm-1"], vms["vm-2"], vms["vm-3"]
    assert v1.cpu_utilization == pytest.approx(0.5, abs=TOL)  # 1 CPU-second per second over 2 vCPUs
    assert v1.memory_used_mib == pytest.approx(2048, abs=TOL)
    assert v1.dirty_rate_mib_s == pytest.approx(dirty_vm1(end, end - HOURS * 3600), abs=TOL)
    assert v2.cpu_utilization == pytest.approx(0.3, abs=TOL)  # across the restart 45 s ago
    assert v2.memory_used_mib == pytest.approx(1024, abs=TOL)
    assert v2.dirty_rate_mib_s is None  # NaN dropped
    assert v3 == VmSample("vm-3", end, None, None, 1.25)  # libvirt series stale (memory) or gone (rate)

    assert result.skipped == {"unknown_host": 5, "unknown_vm": 3, "stale": 1, "non_finite": 1}
    assert result.missing == {"host_memory": 1, "host_load": 1, "vm_cpu": 1, "vm_memory": 1, "vm_dirty_rate": 1}
    assert set(result.query_seconds) >= {"host_cpu", "host_cpu.freshness", "vm_dirty_rate"}


def test_the_resident_memory_query_docs_prometheus_gives_reads_what_qemu_holds(prom: PromServer) -> None:
    rss = MetricQuery("max by ($vm) (libvirt_domain_memory_stats_rss_bytes{$select})",
                      "max by ($vm) (timestamp(libvirt_domain_memory_stats_rss_bytes))", scale=BYTES_TO_MIB)
    with _source(prom, vm_resident=rss) as source:
        result = source.poll(HOSTS, VMS)
    vms = {s.vm_id: s for s in result.vm_samples}
    assert vms["vm-1"].resident_memory_mib == pytest.approx(1190, abs=TOL)  # bytes -> MiB
    assert vms["vm-2"].resident_memory_mib is None  # no series: unmeasured, not 0
    assert result.missing["vm_resident"] == 2


def test_migration_interface_and_a_longer_max_age(prom: PromServer) -> None:
    with _source(prom, migration_interface="eth1", max_age_s=600.0) as source:
        result = source.poll(HOSTS, VMS)
    hosts = {s.host_id: s for s in result.host_samples}
    assert hosts["host-a"].network_rx_mib_s == pytest.approx(5, abs=TOL)
    assert hosts["host-a"].network_tx_mib_s == pytest.approx(2.5, abs=TOL)
    assert hosts["host-b"].network_rx_mib_s is None  # host-b has no eth1
    vm3 = next(s for s in result.vm_samples if s.vm_id == "vm-3")
    assert vm3.memory_used_mib == pytest.approx(4096, abs=TOL)  # no longer stale
    assert vm3.time_s == prom.end  # newest of its metrics (the dirty rate)
    assert "stale" not in result.skipped


def test_host_label_and_unknown_instances(prom: PromServer) -> None:
    """Without a mapping, instance "10.0.0.1:9100" is host "10.0.0.1"; nothing maps to host-a then."""
    queries = PrometheusQueries()
    with PrometheusSource(prom.url, queries, timeout_s=5, clock=Clock(prom.end + 5)) as source:
        result = source.poll(["10.0.0.1", "host-b"], [])
    assert [s.host_id for s in result.host_samples] == ["10.0.0.1"]
    assert result.host_samples[0].cpu_utilization == pytest.approx(0.25, abs=TOL)
    # "10.0.0.2" (cpu, rx, tx: no memory, no load) and "10.0.0.9" (all 5); every VM series: cpu 3 (vm-3 has no
    # rate), memory 4, dirty rate 4. The unknown are counted before the stale.
    assert result.skipped["unknown_host"] == 3 + 5
    assert result.skipped["unknown_vm"] == 3 + 4 + 4


def test_history_is_the_forecaster_window(prom: PromServer) -> None:
    end, start = prom.end, prom.end - HOURS * 3600
    with _source(prom) as source:
        dirty = source.history("vm-1", "dirty_rate_mib_s", end - 3600, end, 60)
        cpu = source.history("vm-2", "cpu_utilization", end - 600, end, STEP)
        memory = source.history("vm-3", "memory_used_mib", end - 600, end, 60)
        with pytest.raises(ValueError, match="metric must be one of"):
            source.history("vm-1", "cpu_seconds", end - 60, end, 15)
        with pytest.raises(ValueError, match="11000 points"):
            source.history("vm-1", "dirty_rate_mib_s", end - 86400, end, 1)
    assert [t for t, _ in dirty] == [float(t) for t in range(end - 3600, end + 1, 60)]
    assert [v for _, v in dirty] == pytest.approx([dirty_vm1(t, start) for t, _ in dirty], abs=TOL)
    # The counter reset 45 s before the end (rate() sees it) never shows as a dip or a negative spike.
    assert len(cpu) == 41 and all(v == pytest.approx(0.3, abs=TOL) for _, v in cpu)
    with PrometheusConnect(url=prom.url) as raw:
        resets = raw.custom_query('resets(libvirt_domain_info_cpu_time_seconds_total{domain="vm-2"}[10m])',
                                  params={"time": end})
    assert float(resets[0]["value"][1]) == 1
    # vm-3's memory until Prometheus's 5-minute lookback runs out after its last sample
    assert memory and all(v == 4096 for _, v in memory)
    assert max(t for t, _ in memory) <= end - 150 + 300


def test_a_bad_query_is_a_clear_error(prom: PromServer) -> None:
    with PrometheusSource(prom.url, PrometheusQueries(window="2 minutes"), timeout_s=5,
                          clock=Clock(prom.end + 5)) as source:
        result = source.poll(HOSTS, VMS)
    assert not result.health.ok
    assert result.health.last_error is not None
    assert "refused query host_cpu" in result.health.last_error and "400" in result.health.last_error


def test_server_down_then_back(prom: PromServer) -> None:
    clock = Clock(prom.end + 5)
    with _source(prom, clock, timeout_s=3.0) as source:
        good = source.poll(HOSTS, VMS)
        assert good.health.ok and good.health.last_success_s == prom.end + 5

        prom.stop()
        clock.now += 30
        started = time.monotonic()
        down = source.poll(HOSTS, VMS)
        assert time.monotonic() - started < 3
        assert not down.health.ok and down.from_cache
        assert down.health.consecutive_failures == 1 and down.health.last_success_s == prom.end + 5
        assert down.health.last_error is not None
        assert f"Prometheus at {prom.url} is unreachable" in down.health.last_error
        assert (down.host_samples, down.vm_samples) == (good.host_samples, good.vm_samples)  # last good state...
        assert down.as_of_s == prom.end + 5 and down.age_s == 30  # ...with its age
        narrower = source.poll(["host-a"], ["vm-1"])
        assert [s.host_id for s in narrower.host_samples] == ["host-a"]
        assert [s.vm_id for s in narrower.vm_samples] == ["vm-1"]
        assert narrower.health.consecutive_failures == 2 and source.health == narrower.health
        with pytest.raises(PrometheusError, match="unreachable"):
            source.history("vm-1", "dirty_rate_mib_s", prom.end - 600, prom.end, 60)

        prom.start()
        clock.now += 30
        back = source.poll(HOSTS, VMS)
        assert back.health.ok and back.health.consecutive_failures == 0
        assert back.health.last_success_s == prom.end + 65 and back.age_s == 0
        assert back.health.last_error == down.health.last_error  # kept for the operator
        assert {s.host_id for s in back.host_samples} == set(HOSTS)


def test_a_stalled_server_times_out(prom: PromServer) -> None:
    with _source(prom, timeout_s=1.0) as source:
        prom.pause()
        try:
            started = time.monotonic()
            result = source.poll(HOSTS, VMS)
            elapsed = time.monotonic() - started
        finally:
            prom.resume()
        assert 0.9 <= elapsed < 2.5
        assert not result.health.ok and result.host_samples == []
        assert result.health.last_error is not None and "did not answer within 1 s" in result.health.last_error
        assert source.poll(HOSTS, VMS).health.ok



def test_the_collector_feeds_the_advisors_store(prom: PromServer, tmp_path: Path) -> None:
    """Prometheus -> collector -> the same store pushed samples feed; unknown series are skipped and counted."""
    from advisor.domain.cluster import InventoryChange
    from advisor.domain.model import Host, Vm
    from advisor.telemetry.collectors import prometheus_collector
    from tests.support import local_advisor

    with local_advisor(tmp_path, clock=Clock(prom.end + 5)) as app:
        # vm-2 is known with less memory than its balloon figure says; vm-3 is not in the inventory at all.
        app.usecases.ingestion.push_inventory(InventoryChange(
            hosts=(Host("host-a", 16, 16384), Host("host-b", 16, 16384)),
            vms=(Vm("vm-1", "host-a", 4096, 2), Vm("vm-2", "host-b", 512, 1)),
        ))
        metrics = app.metrics
        with _source(prom) as source:
            prometheus_collector(source, app.usecases.ingestion, metrics)()
        service = app.usecases.queries
        hosts = {v.host.id: v for v in service.list_hosts()[0]}
        vms = {v.vm.id: v for v in service.list_vms()[0]}
    assert hosts["host-a"].cpu_utilization == pytest.approx(0.25, abs=TOL)
    assert vms["vm-1"].dirty_rate_mib_s == pytest.approx(dirty_vm1(prom.end, prom.end - HOURS * 3600), abs=1e-3)
    assert vms["vm-2"].cpu_utilization == pytest.approx(0.3, rel=2**-11)  # kept as float16
    registry = metrics.registry
    assert registry.get_sample_value("advisor_source_up", {"source": "prometheus"}) == 1
    assert registry.get_sample_value("advisor_source_skipped_total",
                                     {"source": "prometheus", "reason": "unknown_vm"}) >= 1
    assert registry.get_sample_value("advisor_samples_ingested_total", {"kind": "vm"}) == 2
