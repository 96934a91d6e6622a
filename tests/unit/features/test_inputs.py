"""The one builder of prediction inputs: what a request overrides, else the forecast, else the newest sample;
and the table path (training, batch) giving the same inputs as the serving path for the same observations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from advisor.domain.model import MIB, DirtyRateForecast, Host, MigrationInputs, ModelRef, Technique, Vm
from advisor.features.inputs import InputTable, LinkTraffic, Overrides, VmObservations, free_link, migration_inputs
from advisor.features.samples import Latest

VM = Vm("v", "a", 4096, 2)
SOURCE = Host("a", 8, 65536, network_bandwidth_mib_s=100.0)
TARGET = Host("b", 8, 65536, network_bandwidth_mib_s=50.0)
FORECAST = DirtyRateForecast(20.0, 35.0, (15.0, 25.0), 6, 50.0, ModelRef("lightgbm-dirty", "1.0.0"), 30.0)
SEEN = VmObservations(Latest(12.0, 1_800_000_000.0), Latest(900.0, 1_800_000_000.0))


def test_a_request_override_wins_then_the_forecast_then_the_newest_sample() -> None:
    overridden = migration_inputs(VM, SOURCE, TARGET, SEEN, FORECAST, Overrides(dirty_rate_mib_s=5.0))
    assert (overridden.dirty_rate_mib_s, overridden.dirty_rate_source) == (5.0, "request override")
    forecast = migration_inputs(VM, SOURCE, TARGET, SEEN, FORECAST)
    assert forecast.dirty_rate_mib_s == 20.0 and forecast.burst_dirty_rate_mib_s == 35.0
    assert "forecast by lightgbm-dirty 1.0.0 from 6 samples over 50 s" in forecast.dirty_rate_source
    latest = migration_inputs(VM, SOURCE, TARGET, SEEN, None)
    assert latest.dirty_rate_mib_s == 12.0 and "latest sample, 2027-01-15T08:00:00Z" in latest.dirty_rate_source
    unknown = migration_inputs(VM, SOURCE, TARGET, VmObservations(), None)
    # Unknown is never idle: as fast as the (slower) link moves, and said so.
    assert unknown.dirty_rate_mib_s == 50.0 and not unknown.dirty_rate_known
    assert "unknown, taken as 50.0 MiB/s" in unknown.dirty_rate_source


def test_memory_in_use_and_the_slower_link() -> None:
    seen = migration_inputs(VM, SOURCE, TARGET, SEEN, None)
    assert (seen.memory_mib, seen.bandwidth_mib_s, seen.max_bandwidth_mib_s, seen.max_downtime_ms) == (
        900.0, 50.0, 50.0, 300.0)
    alone = migration_inputs(VM, SOURCE, None, VmObservations(), None,
                             Overrides(bandwidth_mib_s=10.0, max_downtime_ms=100.0))
    assert (alone.memory_mib, alone.bandwidth_mib_s, alone.max_downtime_ms) == (4096.0, 10.0, 100.0)


def test_samples_from_before_a_vm_was_made_smaller_are_not_taken_as_its_own() -> None:
    before = VmObservations(Latest(1.0, 1_800_000_000.0), Latest(2500.0, 1_800_000_000.0),
                            Latest(3000.0, 1_800_000_000.0))
    resized = migration_inputs(Vm("v", "a", 1024, 2), SOURCE, TARGET, before, None)
    assert (resized.memory_mib, resized.memory_source) == (1024.0, "configured")  # unknown: all of it
    assert resized.working_set_mib == 1024.0  # at most all of it


@pytest.mark.parametrize(("resident", "taken"), [
    (None, None),  # not measured
    (1500.0, 1500.0),  # the guest's touched pages and QEMU's own
    (4096.0 + 65536.0, 4096.0 + 65536.0),  # the most QEMU's own can add to the VM's memory
    (4096.0 + 65536.5, None),  # more: of the VM before it was made smaller
    (0.0, None),  # no process holds nothing: not a reading
])
def test_the_resident_memory_of_qemu_is_taken_where_it_can_be_the_vms(resident: float | None,
                                                                       taken: float | None) -> None:
    seen = VmObservations(memory_used=Latest(900.0, 1_800_000_000.0),
                          resident_memory=None if resident is None else Latest(resident, 1_800_000_000.0))
    inputs = migration_inputs(VM, SOURCE, TARGET, seen, None)
    assert inputs.resident_memory_mib == taken and inputs.memory_mib == 900.0  # what is in use, as before


def test_the_table_path_builds_what_the_serving_path_builds() -> None:
    frame = pd.DataFrame({"technique": ["precopy", "postcopy"], "vm_memory_mib": [1024, 2048],
                          "dirty_rate_pages_per_s": [2560, 0], "available_bandwidth_mbps": [800, 1000],
                          "max_bandwidth_mib_s": [100, 64]})
    table = InputTable.from_frame(frame)
    rows = [(MigrationInputs(1024, 2560 * 4096 / MIB, 800e6 / 8 / MIB, 100), Technique.PRECOPY),
            (MigrationInputs(2048, 0.0, 1000e6 / 8 / MIB, 64), Technique.POSTCOPY)]
    served = InputTable.from_rows(rows)
    round_trip = InputTable.from_rows(table.rows())
    for other in (served, round_trip):
        for name in ("memory_mib", "dirty_rate_mib_s", "bandwidth_mib_s", "max_bandwidth_mib_s", "max_downtime_ms",
                     "memory_configured_mib", "deadline_ms", "working_set_mib"):
            np.testing.assert_allclose(getattr(table, name), getattr(other, name), err_msg=name)
        assert table.techniques == other.techniques
        assert (table.memory_known == other.memory_known).all()
        assert table.profiles == other.profiles == ("snu", "snu")


def test_optional_columns_and_what_is_assumed_without_them() -> None:
    frame = pd.DataFrame({"technique": ["precopy"] * 3, "vm_memory_mib": ["128", "256", "1024"],
                          "dirty_rate_pages_per_s": [2048, 2048, 0], "available_bandwidth_mbps": [10000] * 3,
                          "max_bandwidth_mib_s": [8, 8, 100], "source": ["lab", "lab", ""],
                          "memory_used_mib": ["90", "", ""], "max_downtime_ms": ["100", "", ""],
                          "deadline_ms": ["90000", "", ""], "dirty_rate_4s_pages_per_s": ["1024", "", ""]})
    table = InputTable.from_frame(frame)
    assert table.profiles == ("lab", "lab", "snu")
    np.testing.assert_allclose(table.memory_mib, [90, 256, 1024])  # in use, else configured (lab), else as given
    assert list(table.memory_known) == [True, False, True]
    np.testing.assert_allclose(table.memory_configured_mib, [128, 256, np.nan])
    np.testing.assert_allclose(table.max_downtime_ms, [100, 300, 300])
    np.testing.assert_allclose(table.deadline_ms, [90000, 0, 0])
    np.testing.assert_allclose(table.working_set_mib, [16, np.nan, np.nan])  # 4 MiB/s over 4 s
    assert table.assumed[0] == ""
    assert table.assumed[1] == "memory in use unknown: all 256 MiB configured copied; max downtime 300 ms; no deadline"
    assert table.assumed[2] == "source snu; max downtime 300 ms; no deadline"


BUSY = Latest(0.95, 1_800_000_000.0)


def test_a_busy_guest_whose_dirty_rate_reads_zero_has_an_unknown_dirty_rate() -> None:
    blind = migration_inputs(VM, SOURCE, TARGET, VmObservations(Latest(0.0, 1_800_000_000.0), None,
                                                                Latest(0.0, 1_800_000_000.0), BUSY), None)
    # the "unknown dirty rate" convention: as fast as the (slower) link moves, no working set, said so
    assert (blind.dirty_rate_mib_s, blind.dirty_rate_known, blind.working_set_mib) == (50.0, False, None)
    assert blind.dirty_rate_source.startswith("dirty rate unknown: the guest is busy while page sampling reads ~0")
    assert "vCPUs 95% busy" in blind.dirty_rate_source
    writing = migration_inputs(VM, SOURCE, TARGET, VmObservations(Latest(12.0, 1_800_000_000.0), None, None, BUSY),
                               None)
    assert writing.dirty_rate_known and writing.dirty_rate_mib_s == 12.0
    asked = migration_inputs(VM, SOURCE, TARGET, VmObservations(None, None, None, BUSY), None,
                             Overrides(dirty_rate_mib_s=0.0))
    assert asked.dirty_rate_known and asked.dirty_rate_mib_s == 0.0  # a request's figure is its own


def test_the_table_path_judges_a_blind_reading_as_serving_does() -> None:
    frame = pd.DataFrame({"technique": ["precopy", "precopy", "precopy"], "vm_memory_mib": [256, 256, 256],
                          "dirty_rate_pages_per_s": [0, 0, 0], "available_bandwidth_mbps": [10_000] * 3,
                          "max_bandwidth_mib_s": [32, 32, 32], "source": ["lab"] * 3,
                          "memory_used_mib": [80.0, 80.0, 80.0], "dirty_rate_4s_pages_per_s": [0, 0, 0],
                          "vcpu_utilization": ["1.0", "0.1", ""], "nonzero_memory_mib": ["", "95.5", "300"]})
    table = InputTable.from_frame(frame)
    assert table.dirty_rate_known.tolist() == [False, True, True]
    assert table.dirty_rate_mib_s.tolist() == [32.0, 0.0, 0.0]
    assert np.isnan(table.working_set_mib[0]) and table.working_set_mib[1] == 0.0
    assert "dirty rate unknown: the guest is busy" in table.assumed[0] and "dirty rate" not in table.assumed[1]
    # the first pass: memory in use, the measured non-zero pages, never more than the RAM
    assert table.first_pass_mib.tolist() == [80.0, 95.5, 256.0]
    inputs = table.rows()
    assert not inputs[0][0].dirty_rate_known and inputs[0][0].dirty_rate_source.startswith("dirty rate unknown")
    assert inputs[1][0].nonzero_memory_mib == 95.5
    assert InputTable.from_rows(inputs).dirty_rate_known.tolist() == [False, True, True]


def _latest(value: float) -> Latest:
    return Latest(value, 1_700_000_000.0)


@pytest.mark.parametrize(("tx", "rx", "free", "said"), [
    (None, None, 100.0, "no traffic sample"),  # nothing says: the link's speed, and the answer says so
    (30.0, None, 70.0, "a sends 30.0"),
    (None, 160.0, 40.0, "b receives 160.0"),  # the end with less left bounds the move
    (30.0, 160.0, 40.0, "b receives 160.0"),
    (150.0, None, 10.0, "a sends 150.0"),  # counters beyond the link's speed: never less than a tenth of it
    (-5.0, None, 100.0, "a sends -5.0"),  # a negative counter (a reset) frees nothing
])
def test_the_free_link_is_its_speed_less_the_traffic_on_it(tx: float | None, rx: float | None, free: float,
                                                            said: str) -> None:
    a, b = Host("a", 8, 16000, network_bandwidth_mib_s=100.0), Host("b", 8, 16000, network_bandwidth_mib_s=200.0)
    traffic = LinkTraffic(None if tx is None else _latest(tx), None if rx is None else _latest(rx))
    got, source = free_link(a, b, traffic)
    assert got == pytest.approx(free) and said in source
    inputs = migration_inputs(Vm("v", "a", 1024, 1), a, b, VmObservations(), None, traffic=traffic)
    assert inputs.bandwidth_mib_s == pytest.approx(free) and inputs.max_bandwidth_mib_s == 100.0
    assert inputs.usable_bandwidth_mib_s == pytest.approx(free) and said in inputs.bandwidth_source
    asked = migration_inputs(Vm("v", "a", 1024, 1), a, b, VmObservations(), None, Overrides(bandwidth_mib_s=55.0),
                             traffic)
    assert (asked.bandwidth_mib_s, asked.bandwidth_source) == (55.0, "request override")


def test_a_table_without_rows_is_an_empty_table() -> None:
    columns = ["technique", "vm_memory_mib", "dirty_rate_pages_per_s", "available_bandwidth_mbps",
               "max_bandwidth_mib_s"]
    table = InputTable.from_frame(pd.DataFrame({c: pd.Series([], dtype=str) for c in columns}))
    assert len(table) == 0 and table.memory_known.dtype == np.bool_ and table.rows() == []


@pytest.mark.parametrize(("cell", "profile", "assumed"), [
    ("", "snu", "source snu"),
    (None, "snu", "source snu"),
    (np.nan, "snu", "source snu"),
    (" Lab ", "lab", ""),
    # a name like any other, served as the profile it names (uncalibrated if never calibrated), not as snu
    ("none", "none", ""),
    ("nan", "nan", ""),
    ("None", "none", ""),
])
def test_only_a_missing_source_is_no_profile(cell: object, profile: str, assumed: str) -> None:
    frame = pd.DataFrame({"technique": ["precopy"], "vm_memory_mib": [1024], "dirty_rate_pages_per_s": [0],
                          "available_bandwidth_mbps": [800], "max_bandwidth_mib_s": [100], "source": [cell],
                          "memory_used_mib": [512], "max_downtime_ms": [300], "deadline_ms": [1000]})
    table = InputTable.from_frame(frame)
    assert table.profiles == (profile,) and table.assumed == (assumed,)


def test_resident_memory_travels_from_a_table_to_the_first_pass_and_back() -> None:
    frame = pd.DataFrame({"technique": ["postcopy"] * 3, "vm_memory_mib": [1024] * 3,
                          "dirty_rate_pages_per_s": [0] * 3, "available_bandwidth_mbps": [10_000] * 3,
                          "max_bandwidth_mib_s": [32] * 3, "source": ["lab"] * 3,
                          "memory_used_mib": [190.0] * 3, "resident_memory_mib": ["400", "", "900"]})
    table = InputTable.from_frame(frame)
    assert table.first_pass_mib.tolist() == [310.0, 190.0, 380.0]  # less QEMU's 90 MiB; none; at most 2x in use
    rows = table.rows()
    assert [r.resident_memory_mib for r, _ in rows] == [400.0, None, 900.0]
    assert InputTable.from_rows(rows).first_pass_mib.tolist() == table.first_pass_mib.tolist()



def test_a_reading_at_page_samplings_floor_is_flagged_on_both_paths_and_kept_as_read() -> None:
    # serving: a busy guest whose newest reading is one sampled page (2 MiB/s) while its 4 s window saw nothing
    floor = migration_inputs(VM, SOURCE, TARGET, VmObservations(Latest(2.0, 1_800_000_000.0), None,
                                                                Latest(0.0, 1_800_000_000.0), BUSY), None)
    assert floor.dirty_rate_at_floor and floor.dirty_rate_known and floor.dirty_rate_mib_s == 2.0
    idle = migration_inputs(VM, SOURCE, TARGET, VmObservations(Latest(2.0, 1_800_000_000.0), None,
                                                               Latest(0.0, 1_800_000_000.0), Latest(0.1, 1.0)), None)
    assert not idle.dirty_rate_at_floor
    asked = migration_inputs(VM, SOURCE, TARGET, VmObservations(None, None, Latest(0.0, 1.0), BUSY), None,
                             Overrides(dirty_rate_mib_s=2.0))
    assert not asked.dirty_rate_at_floor  # a request's figure is its own
    # the table path: 512 pages/s = 2 MiB/s at 1 s, 0 over 4 s
    frame = pd.DataFrame({"technique": ["precopy"] * 2, "vm_memory_mib": [256] * 2,
                          "dirty_rate_pages_per_s": [512, 512], "available_bandwidth_mbps": [10_000] * 2,
                          "max_bandwidth_mib_s": [32, 32], "source": ["lab"] * 2, "memory_used_mib": [80.0] * 2,
                          "dirty_rate_4s_pages_per_s": [0, 0], "vcpu_utilization": ["1.0", "0.1"]})
    table = InputTable.from_frame(frame)
    assert table.dirty_at_floor is not None and table.dirty_at_floor.tolist() == [True, False]
    assert table.dirty_rate_known.tolist() == [True, True] and table.dirty_rate_mib_s.tolist() == [2.0, 2.0]
    assert InputTable.from_rows(table.rows()).dirty_at_floor.tolist() == [True, False]  # type: ignore[union-attr]
    # as the physics reads it: blind, the link's rate, no working set
    seen = table.blind_at_floor()
    assert seen.dirty_rate_known.tolist() == [False, True] and seen.dirty_rate_mib_s.tolist() == [32.0, 2.0]
    assert np.isnan(seen.working_set_mib[0]) and seen.working_set_mib[1] == 0.0
    assert seen.blind_at_floor() is seen  # spent: the physics may read it again and nothing changes
