"""A guest's stats as the libvirt adapter reads them from one record of the bulk stats API (the real records come
in the lab: tests/contract/test_hypervisor.py)."""

from __future__ import annotations

import pytest

from advisor.adapters.libvirt import guest_stats_of

RECORD = {"cpu.time": 3_000_000_000, "vcpu.current": 2, "balloon.current": 1_048_576, "balloon.usable": 786_432,
          "block.count": 1, "block.0.name": "vda", "block.0.wr.bytes": 2 * 1024 * 1024}


def test_the_resident_memory_of_qemu_is_read_from_balloon_rss_in_mib() -> None:
    stats = guest_stats_of("vm1", 100.0, {**RECORD, "balloon.rss": 400_384})
    assert stats.resident_memory_mib == pytest.approx(391.0)
    assert (stats.name, stats.time_s, stats.cpu_time_s, stats.vcpus) == ("vm1", 100.0, 3.0, 2)
    assert stats.memory_used_mib == pytest.approx(256.0) and stats.disk_written_mib == {"vda": 2.0}


@pytest.mark.parametrize("rss", [None, 0])
def test_a_resident_memory_not_reported_is_unknown_never_zero(rss: int | None) -> None:
    record = RECORD if rss is None else {**RECORD, "balloon.rss": rss}
    assert guest_stats_of("vm1", 100.0, record).resident_memory_mib is None


def test_a_record_without_the_balloon_group_has_no_memory_figures() -> None:
    stats = guest_stats_of("vm1", 100.0, {"cpu.time": 0})
    assert (stats.memory_used_mib, stats.resident_memory_mib, stats.vcpus) == (None, None, 1)
