"""The main job: the whole story on one machine.

Bring up the lab (libvirt daemons as hosts, tiny guests under QEMU), start the advisor on its embedded default,
ingest what the hypervisors report, ask where and how to move a busy guest, execute the move through libvirt while
watching it, and print what was predicted next to what happened.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from advisor.api import convert
from advisor.api.client import AdvisorClient
from advisor.api.v1 import advisor_pb2 as pb
from advisor.app import build_app, open_hypervisor
from advisor.cli.render import outlook, phase_name, render_recommendation
from advisor.config import Settings
from advisor.domain.access import Role
from advisor.features.inputs import PROFILE_LABEL
from advisor.lab import Lab
from advisor.tables import table
from advisor.telemetry.hypervisors import GuestStatsReader, HostConnection, measure_dirty_rates, read_inventory

# The lab's hosts talk over loopback, far faster than a data-centre link; the advisor is told they share a
# 32 MiB/s migration network, and migrations are capped to it, so that moving a 128 MiB guest takes seconds and
# its dirty rate matters as it would on a real network.
LAB_LINK_MIB_S = 32.0
BUSY_GUEST = "vm1"
BUSY_RATE_MIB_S = 16.0
READINGS = 6

Print = Callable[[str], None]


def lab_uri_pattern(lab: Lab) -> str:
    """The allow-list pattern of this lab's hosts: its daemons' sockets (hosts/<host>/run/libvirt-sock)."""
    return lab.uri("hv1").replace("/hosts/hv1/", "/hosts/*/")


def _ingest(client: AdvisorClient, lab_hosts: list[HostConnection], out: Print) -> None:
    change = read_inventory(lab_hosts, open_hypervisor)
    # The lab's hosts are of the "lab" profile: the cost model is calibrated for them apart.
    hosts = [replace(h, labels={**h.labels, PROFILE_LABEL: "lab"}) for h in change.hosts]
    client.push_inventory(pb.PushInventoryRequest(
        hosts=[convert.host_to_pb(h) for h in hosts], vms=[convert.vm_to_pb(v) for v in change.vms]
    ))
    # A short history of readings, as the background collector would gather over minutes: the forecaster needs
    # a window, not one reading (one page-sampling reading is noisy).
    # The guests' CPU use and memory in use (balloon) as the collector reads them, from the same rounds: without
    # them every VM would be taken as fully busy and as copying all of its configured memory.
    samples, guest_stats, stats_reader = [], [], GuestStatsReader()
    stats_reader.read(lab_hosts, open_hypervisor)  # the first reading: CPU needs two
    for _ in range(READINGS):
        samples += measure_dirty_rates(lab_hosts, open_hypervisor, time.time, readings=1, seconds=1)
        guest_stats += stats_reader.read(lab_hosts, open_hypervisor)
        time.sleep(1.0)
    # and one longer window, as the collector measures now and then: what the guest rewrote in 4 s
    windows = measure_dirty_rates(lab_hosts, open_hypervisor, time.time, readings=1, seconds=4,
                                  as_working_set=True)
    request = pb.PushSamplesRequest()
    for s in samples:
        sample = request.vm_samples.add(vm_id=s.vm_id, dirty_rate_mib_s=s.dirty_rate_mib_s or 0.0)
        sample.time.CopyFrom(convert.timestamp(s.time_s))
    for s in windows:
        sample = request.vm_samples.add(vm_id=s.vm_id, working_set_mib=s.working_set_mib or 0.0)
        sample.time.CopyFrom(convert.timestamp(s.time_s))
    for s in guest_stats:
        sample = request.vm_samples.add(vm_id=s.vm_id)
        if s.cpu_utilization is not None:
            sample.cpu_utilization_ratio = s.cpu_utilization
        if s.memory_used_mib is not None:
            sample.memory_used_mib = s.memory_used_mib
        sample.time.CopyFrom(convert.timestamp(s.time_s))
    client.push_samples(request)

    def readings(vm: str) -> str:
        values = [s.dirty_rate_mib_s or 0.0 for s in samples if s.vm_id == vm]
        return " ".join(f"{v:.0f}" for v in values) or "-"

    def last(vm: str, field: str, scale: float, unit: str) -> str:
        values = [getattr(s, field) for s in guest_stats if s.vm_id == vm and getattr(s, field) is not None]
        return f"{values[-1] * scale:.0f}{unit}" if values else "-"

    rows = [[v.id, v.host_id, v.memory_mib, last(v.id, "memory_used_mib", 1, ""), v.vcpus,
             last(v.id, "cpu_utilization", 100, "%"), readings(v.id)] for v in change.vms]
    out(f"Ingested from libvirt: {len(change.hosts)} hosts, {len(change.vms)} guests, and {READINGS} one-second "
        f"page-sampling readings of each guest's dirty rate")
    out(table(["guest", "host", "MiB", "in use", "vCPUs", "CPU", "dirty MiB/s readings"], rows,
              right=(2, 3, 4, 5)) + "\n")


def _watch(client: AdvisorClient, operation_id: str, out: Print) -> None:
    """One line a second while it runs, and one for each thing the monitor did."""
    last_line, last_message = 0.0, ""
    for p in client.watch(operation_id, timeout_s=600):
        news = p.message != last_message
        if time.monotonic() - last_line >= 1.0 or news:
            last_line, last_message = time.monotonic(), p.message
            figures = (f"round {p.iteration:2d}, {p.memory_remaining_mib:5.1f} of {p.memory_total_mib:.0f} MiB left, "
                       f"dirtying {p.dirty_rate_mib_s:5.1f} MiB/s, sending {p.transfer_rate_mib_s:5.1f} MiB/s, "
                       f"{outlook(p) or 'estimating'}" if p.memory_total_mib else "")
            said = f"  <- {p.message}" if news else ""
            out(f"  {p.elapsed_ms / 1000:5.1f} s  {phase_name(p.phase):9s} {figures}{said}")


def _compare(op: pb.Operation) -> str:
    c, o = op.predicted_cost, op.outcome

    def row(name: str, e: pb.Estimate, field: str, unit: str) -> list[str]:
        predicted = [name, f"{e.median:.0f} {unit}", f"{e.low:.0f}-{e.high:.0f}"]
        if not o.HasField(field):
            return [*predicted, "-", "-", "-"]  # not measured
        actual = getattr(o, field)
        inside = "yes" if e.low <= actual <= e.high else "no"
        return [*predicted, f"{actual:.0f} {unit}", f"{actual / e.median:.2f}" if e.median else "-", inside]

    rows = [row("total time", c.total_time_ms, "total_time_ms", "ms"),
            row("downtime", c.downtime_ms, "downtime_ms", "ms"),
            row("data sent", c.transferred_mib, "transferred_mib", "MiB")]
    return table(["", "predicted", "interval", "actual", "actual/predicted", "inside"], rows, right=(1, 2, 3, 4))


def run(root: Path | None, data_dir: Path, *, keep_lab: bool, database_url: str = "", out: Print = print) -> int:
    started = time.monotonic()
    lab = Lab(root, progress=lambda line: out(f"  lab: {line}"))
    out("Bringing up the lab: 2 libvirt daemons as hosts, 2 guests under QEMU (TCG)...")
    status = lab.up(hosts=2, guests=2)
    lab.set_dirty_rate(BUSY_GUEST, BUSY_RATE_MIB_S)
    out(f"Lab up; {BUSY_GUEST} now writes {BUSY_RATE_MIB_S:g} MiB/s of changing data.\n")

    # The demo measures dirty rates itself, once, where the reader sees it; no background collector meanwhile.
    app = build_app(Settings(listen="127.0.0.1:0", data_dir=data_dir, database_url=database_url,
                             metrics_listen="127.0.0.1:0", dirty_rate_interval_s=0,
                             hypervisor_uri_patterns=(*Settings().hypervisor_uri_patterns, lab_uri_pattern(lab))))
    port = app.start()
    token = app.tokens.renew("demo", Role.ADMIN)  # the demo's own credentials; what it decides is recorded as "demo"
    out(f"Advisor on 127.0.0.1:{port} (data in {'PostgreSQL' if database_url else f'{data_dir}/'}, metrics on "
        f":{app.metrics_port}, "
        f"cost model {app.predictor.model.name} {app.predictor.model.version}).\n")
    ok = False
    try:
        with AdvisorClient(f"127.0.0.1:{port}", token=token, timeout_s=120) as client:
            lab_hosts = [HostConnection(h.name, h.uri, migration_address="127.0.0.1",
                                        network_bandwidth_mib_s=LAB_LINK_MIB_S, migration_tls=h.migration_tls)
                         for h in status.hosts]
            _ingest(client, lab_hosts, out)

            out(f"Where and how should {BUSY_GUEST} move, with at most 300 ms of downtime?\n")
            rec = client.recommend(pb.RecommendTargetRequest(vm_id=BUSY_GUEST,
                                                             objective=pb.Objective(max_downtime_ms=300)))
            out(render_recommendation(rec) + "\n")
            client.decide(rec.id, True, "approved by the demo")
            op = client.execute(rec.id)
            out(f"Approved and executing as operation {op.operation_id} (libvirt, peer to peer):")
            _watch(client, op.operation_id, out)
            final = client.operation(op.operation_id)
            out(f"\nOutcome: {phase_name(final.phase)}. {final.message}\n")
            out("Predicted (before anything moved) vs actual:")
            out(_compare(final) + "\n")
            alive = lab.guest_alive(BUSY_GUEST, within_s=5)
            out(f"{BUSY_GUEST} runs on {lab.host_of(BUSY_GUEST)} and its console is "
                f"{'still printing' if alive else 'SILENT'}.\n")
            ok = final.phase == pb.MIGRATION_PHASE_SUCCEEDED and alive
    finally:
        app.stop()
        if not keep_lab:
            out("Taking the lab down...")
            lab.down()
    out(f"Done in {time.monotonic() - started:.0f} s.")
    out("Explore further:")
    out("  advisor lab up --hosts 3 --guests 2 ; advisor lab status     # keep a lab running")
    out(f"  advisor serve --data-dir {data_dir}     # then: advisor hosts, advisor recs list, grpcurl ...")
    out("  advisor demo --example                   # the recommendation story on a five-host example cluster")
    return 0 if ok else 1
