"""The background collector against the lab's real hypervisors: dirty rate, CPU, memory and what QEMU holds resident
into the store (and so into a prediction's inputs) and onto the metrics endpoint."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from advisor.adapters.libvirt import LibvirtHypervisor
from advisor.cli.demo import lab_uri_pattern
from advisor.config import Settings
from advisor.lab import Lab
from advisor.telemetry.collectors import dirty_rate_collector
from advisor.telemetry.hypervisors import HostConnection, read_inventory
from tests.support import local_advisor

pytestmark = pytest.mark.integration


def test_dirty_rate_collector_reads_the_lab(lab: Lab, tmp_path: Path) -> None:
    if not lab.status().healthy:
        lab.up(hosts=2, guests=1)
    lab.set_dirty_rate("vm1", 16)
    # The guest's writer runs at the guest's pace: on a loaded machine it takes a while to reach its rate.
    deadline = time.monotonic() + 60
    while lab.measure_dirty_rate("vm1") < 8:
        assert time.monotonic() < deadline, "the lab's writer never reached 8 of its 16 MiB/s"
    hosts = [HostConnection(h.name, h.uri) for h in lab.status().hosts]
    patterns = (*Settings().hypervisor_uri_patterns, lab_uri_pattern(lab))  # the lab's sockets are allowed
    with local_advisor(tmp_path, hypervisor_uri_patterns=patterns) as app:
        metrics = app.metrics
        app.usecases.ingestion.push_inventory(read_inventory(hosts, LibvirtHypervisor))
        collect = dirty_rate_collector(app.usecases.ingestion, LibvirtHypervisor, app.usecases.migrations.migrating_vms,
                                       metrics, clock=time.time, readings=2)
        collect()
        time.sleep(2)
        collect()
        (view,) = [v for v in app.usecases.queries.list_vms()[0] if v.vm.id == "vm1"]
        inputs = app.usecases.advice.predict_cost("vm1").inputs
    # what the guest's QEMU holds resident (libvirt's rss) reaches the inputs a prediction is made from
    assert inputs is not None and inputs.resident_memory_mib is not None and inputs.resident_memory_mib > 0, inputs
    assert view.dirty_rate_mib_s is not None and 4 <= view.dirty_rate_mib_s <= 40, view
    assert view.cpu_utilization is not None and 0 < view.cpu_utilization <= 1  # the guest is busy writing
    gauge = metrics.registry.get_sample_value("advisor_vm_dirty_rate_bytes_per_second", {"vm": "vm1"})
    assert gauge == pytest.approx(view.dirty_rate_mib_s * 2**20)
    lab.set_dirty_rate("vm1", 0)
