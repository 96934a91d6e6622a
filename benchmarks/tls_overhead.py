"""Benchmark: what encrypting a migration (VIR_MIGRATE_TLS) costs in the lab, against what the cost model predicts.

    .venv/bin/python benchmarks/tls_overhead.py [--root /tmp/alt-tls] [--runs 3] [--caps 32,8192] [--dirty-mib-s 0]

Brings up a lab of its own (2 hosts with the lab's migration certificates, 1 guest, no Prometheus), then at each
speed cap migrates the guest back and forth, plain TCP and TLS in turn (so that the two see the same load), by
the libvirt adapter's own flags and parameters. QEMU's completed-job statistics give each migration's time and its
transfer rate (`memory_bps`, its average over the transfer, setup excluded). Prints the medians, TLS against plain
as ratios, and the served cost model's prediction of the same ratio (the move's inputs with and without TLS's
throughput factor, advisor.physics.transport). Figures only, no assertion: the machine is shared, and a cap well
above what the CPU moves makes the CPU the bottleneck, which is what the factor is measured from.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import libvirt

from advisor.adapters.libvirt import ensure_event_loop, migration_flags, migration_params
from advisor.config import REPO_MODELS_DIR
from advisor.domain.model import MIB, MigrationInputs, MigrationParameters, Technique
from advisor.execution.hypervisor import MigrationTarget
from advisor.lab import DEFAULT_ROOT, Lab
from advisor.ml.predictor import CostPredictor
from advisor.model_serving import load_predictor
from advisor.physics.transport import TLS_THROUGHPUT_FACTOR, encrypted_bandwidth

GUEST = "vm1"


def migrate(lab: Lab, cap_mib_s: float, tls: bool) -> dict[str, Any]:
    """One migration of the guest to the other host; QEMU's completed-job statistics."""
    source = lab.host_of(GUEST)
    assert source is not None, f"{GUEST} runs nowhere"
    target = "hv2" if source == "hv1" else "hv1"
    conn = libvirt.open(lab.uri(source))
    done = threading.Event()
    stats: dict[str, Any] = {}

    def completed(_conn: Any, _dom: Any, params: dict[str, Any], _opaque: Any) -> None:
        stats.update(params)
        done.set()

    callback = conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_JOB_COMPLETED, completed, None)
    try:
        dom = conn.lookupByName(GUEST)
        parameters = MigrationParameters(Technique.PRECOPY, cap_mib_s, 300.0, tls=tls)
        params = migration_params(parameters, MigrationTarget(lab.uri(target), "127.0.0.1"))
        for attempt in range(3):
            try:
                dom.migrateToURI3(lab.uri(target), params, migration_flags(parameters, dom.isPersistent() == 1))
                break
            except libvirt.libvirtError as error:
                # other labs on this machine take ports of libvirt's migration range: another one next time
                if "Address already in use" not in str(error) or attempt == 2:
                    raise
                time.sleep(1.0)
        done.wait(5.0)
    finally:
        conn.domainEventDeregisterAny(callback)
        conn.close()
    deadline = time.monotonic() + 10
    while lab.host_of(GUEST) != target and time.monotonic() < deadline:
        time.sleep(0.1)
    return stats


def predicted_total_ms(predictor: CostPredictor, memory_mib: float, cap_mib_s: float, tls: bool) -> float:
    """The served model's median total time of an idle guest's pre-copy at `cap_mib_s` over a link as fast."""
    link = encrypted_bandwidth(cap_mib_s) if tls else cap_mib_s
    inputs = MigrationInputs(memory_mib=memory_mib, dirty_rate_mib_s=0.0, bandwidth_mib_s=link,
                             max_bandwidth_mib_s=cap_mib_s, host_profile="lab")
    return predictor.predict(inputs, Technique.PRECOPY).total_time_ms.median


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("ADVISOR_LAB_TEST_ROOT", "/tmp/alt-tls")))
    parser.add_argument("--runs", type=int, default=3, help="migrations per cap and transport")
    parser.add_argument("--caps", default="32,8192", help="speed caps in MiB/s, comma-separated")
    parser.add_argument("--dirty-mib-s", type=float, default=0.0, help="the guest's writer while it migrates")
    parser.add_argument("--keep-lab", action="store_true", help="leave the lab up at the end")
    args = parser.parse_args()
    ensure_event_loop()
    predictor = load_predictor(REPO_MODELS_DIR)
    lab = Lab(args.root, cache=DEFAULT_ROOT / "cache", with_prometheus=False, progress=lambda line: None)
    status = lab.up(2, 1)
    if not all(h.migration_tls for h in status.hosts):
        raise SystemExit(f"the lab's hosts have no migration certificates: {status.hosts}")
    lab.set_dirty_rate(GUEST, args.dirty_mib_s)
    print(f"load average before: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}; "
          f"TLS throughput factor {TLS_THROUGHPUT_FACTOR:g}")
    print(f"{'cap MiB/s':>9}  {'transport':9}  {'runs':>4}  {'total ms':>9}  {'setup ms':>8}  {'down ms':>7}  "
          f"{'MiB/s':>7}  {'MiB sent':>8}")
    try:
        for cap in (float(c) for c in args.caps.split(",")):
            figures: dict[bool, list[dict[str, Any]]] = {False: [], True: []}
            for _ in range(args.runs):
                for tls in (False, True):
                    figures[tls].append(migrate(lab, cap, tls))
            medians = {}
            for tls, runs in figures.items():
                total = statistics.median(float(s["time_elapsed"]) for s in runs)
                rate = statistics.median(float(s["memory_bps"]) / MIB for s in runs)
                sent = statistics.median(float(s["memory_processed"]) / MIB for s in runs)
                setup = statistics.median(float(s.get("setup_time", 0)) for s in runs)
                down = statistics.median(float(s.get("downtime", 0)) for s in runs)
                medians[tls] = (total, rate, sent)
                print(f"{cap:9.0f}  {'TLS' if tls else 'plain':9}  {len(runs):4d}  {total:9.0f}  {setup:8.0f}  "
                      f"{down:7.0f}  {rate:7.1f}  {sent:8.1f}")
            sent = medians[False][2]
            predicted = (predicted_total_ms(predictor, sent, cap, True)
                         / predicted_total_ms(predictor, sent, cap, False))
            print(f"{cap:9.0f}  TLS/plain: total time x{medians[True][0] / medians[False][0]:.2f} measured, "
                  f"x{predicted:.2f} predicted; transfer rate x{medians[True][1] / medians[False][1]:.2f} measured, "
                  f"x{min(encrypted_bandwidth(cap), cap) / cap:.2f} predicted")
    finally:
        print(f"load average after: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
        if not args.keep_lab:
            lab.down()


if __name__ == "__main__":
    main()
