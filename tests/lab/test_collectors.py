"""The background collector against the lab's real hypervisors: dirty rate, CPU and memory into the store and
onto the metrics endpoint."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from advisor.execution.libvirt_adapter import LibvirtHypervisor
from advisor.lab import Lab
from advisor.metrics import AdvisorMetrics
from advisor.ml.predictor import AnalyticPredictor
from advisor.service import AdvisorService
from advisor.storage.sqlite import SqliteStore
from advisor.telemetry.collectors import dirty_rate_collector
from advisor.telemetry.hypervisors import HostConnection, read_inventory

pytestmark = pytest.mark.integration


def test_dirty_rate_collector_reads_the_lab(lab: Lab, tmp_path: Path) -> None:
    if not lab.status().healthy:
        lab.up(hosts=2, guests=1)
    lab.set_dirty_rate("vm1", 16)
    metrics = AdvisorMetrics(CollectorRegistry())
    service = AdvisorService(SqliteStore(tmp_path / "db.sqlite3"), AnalyticPredictor(), metrics, clock=time.time)
    hosts = [HostConnection(h.name, h.uri) for h in lab.status().hosts]
    service.push_inventory(read_inventory(hosts, LibvirtHypervisor))
    collect = dirty_rate_collector(service, LibvirtHypervisor, metrics, readings=2)
    collect()
    time.sleep(2)
    collect()
    (view,) = [v for v in service.list_vms()[0] if v.vm.id == "vm1"]
    assert view.dirty_rate_mib_s is not None and 4 <= view.dirty_rate_mib_s <= 40, view
    assert view.cpu_utilization is not None and 0 < view.cpu_utilization <= 1  # the guest is busy writing
    gauge = metrics.registry.get_sample_value("advisor_vm_dirty_rate_mib_s", {"vm": "vm1"})
    assert gauge == pytest.approx(view.dirty_rate_mib_s)
    lab.set_dirty_rate("vm1", 0)
