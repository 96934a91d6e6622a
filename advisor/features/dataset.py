"""The columns of a table of migrations, wherever it comes from: the shared SNU data, the lab's collection, the
advisor's own executed migrations, or a CSV given to `advisor predict cost`.

The first columns are the SNU data's, with its units (INPUT_COLUMNS and TARGET_COLUMNS). The optional ones say
what the SNU data leaves implicit: which hosts (`source`), memory in use beside configured memory, the allowed
downtime and the deadline, the working set measured before the migration, and how the migration ended. A row of
the SNU data means: `vm_memory_mib` is memory in use, the allowed downtime QEMU's default (300 ms), no deadline,
and it completed.
"""

from __future__ import annotations

from typing import Any, Final

from advisor.domain.migration import MigrationRecord, Phase
from advisor.domain.model import MIB, PAGE_SIZE_BYTES

INPUT_COLUMNS: Final[tuple[str, ...]] = (
    "technique",
    "vm_memory_mib",
    "dirty_rate_pages_per_s",
    "available_bandwidth_mbps",
    "max_bandwidth_mib_s",
)
TARGET_COLUMNS: Final[tuple[str, ...]] = ("total_time_ms", "downtime_ms", "transferred_kib")
# Optional input columns, each with what a missing value means.
OPTIONAL_INPUTS: Final[dict[str, str]] = {
    "source": "snu: vm_memory_mib is memory in use (the SNU data); lab or anything else: vm_memory_mib is the "
              "configured memory (a missing source is taken as snu)",
    "memory_used_mib": "memory in use as serving reads it: RAM - MemAvailable (the balloon's current - usable), "
                       "which counts the kernel's reservation outside MemTotal; missing: taken from vm_memory_mib as "
                       "`source` says",
    "nonzero_memory_mib": "MiB of guest memory measured non-zero or touched before the migration (what QEMU's first "
                          "pass sends); missing: estimated from memory in use (advisor.physics.first_pass_mib)",
    "resident_memory_mib": "MiB resident in the guest's QEMU process on its host before the migration (libvirt's "
                           "memoryStats rss: the guest pages touched, freed ones included, plus QEMU's own); "
                           "missing: not measured (advisor.physics.first_pass_mib)",
    "vcpu_utilization": "the share (0-1) of its vCPUs the guest kept busy while its dirty rate was measured; busy "
                        "with a dirty rate of ~0 makes the reading blind (advisor.physics.blind_dirty_rate); missing: "
                        "not measured",
    "max_downtime_ms": "allowed downtime; missing: 300 (QEMU's default)",
    "deadline_ms": "the migration must end within this; missing or 0: no deadline",
    "working_set_mib": "MiB the guest rewrote over the longer page-sampling window before the migration; missing: "
                       "not measured",
    "host_load_per_cpu": "runnable threads per CPU (the 1-minute load average over the CPUs) on the busier of the "
                         "two hosts when the migration started; past 1 the migration waits for cores; missing: not "
                         "measured",
}
OUTCOMES: Final = ("completed", "aborted", "failed")
OUTCOME_COLUMNS: Final[tuple[str, ...]] = ("outcome", "iterations", "postcopy_requests")

# How the executor's phases map to a table's outcome.
_OUTCOME_OF = {Phase.SUCCEEDED: "completed", Phase.ABORTED: "aborted", Phase.FAILED: "failed"}


def _measured(value: float | None) -> float | None:
    """A total time or an amount sent as measured; None (an empty cell) where it was not: a migration that ran
    took time and sent pages, so 0 is what a record holds when it never started or was reconciled after a restart
    without a reading, never a measurement."""
    return value if value is not None and value > 0 else None


# The columns of `outcome_row`, in its order: an export with no rows still has its header.
OUTCOME_ROW_COLUMNS: Final[tuple[str, ...]] = (
    "migration_id",
    "vm_id",
    "source_host_id",
    "target_host_id",
    "technique",
    "workload",
    "vm_memory_mib",
    "dirty_rate_pages_per_s",
    "available_bandwidth_mbps",
    "max_bandwidth_mib_s",
    "total_time_ms",
    "downtime_ms",
    "transferred_kib",
    "host_profile",
    "source",
    "memory_used_mib",
    "max_downtime_ms",
    "deadline_ms",
    "working_set_mib",
    "nonzero_memory_mib",
    "resident_memory_mib",
    "host_load_per_cpu",
    "outcome",
    "iterations",
    "postcopy_requests",
    "predicted_total_time_ms",
    "predicted_downtime_ms",
    "predicted_transferred_kib",
    "predicted_converges",
    "predicted_converge_probability",
    "model_name",
    "model_version",
    "finished_at_s",
)


def outcome_row(record: MigrationRecord) -> dict[str, Any] | None:
    """One row of the table for a migration the advisor executed, with the prediction made for it; None when it
    never ran or no inputs were kept with it. A value not measured (a downtime libvirt did not report, a failed
    move's time, a dirty rate that was assumed) is empty, never 0 or the assumption."""
    inputs, outcome = record.inputs, record.outcome
    if inputs is None or outcome is None or record.phase not in _OUTCOME_OF:
        return None
    p = record.predicted
    sent = _measured(outcome.transferred_mib)
    return {
        "migration_id": record.operation_id,
        "vm_id": record.vm_id,  # VM, host pair and time group outcomes for evaluation (training/splits.py)
        "source_host_id": record.source_host_id,
        "target_host_id": record.target_host_id,
        "technique": str(record.parameters.technique),
        "workload": "",  # unknown in production: never a feature
        "vm_memory_mib": inputs.memory_configured_mib or inputs.memory_mib,
        # an assumed rate (nothing measured it, or the reading was blind) is not a measurement: empty
        "dirty_rate_pages_per_s": inputs.dirty_rate_mib_s * MIB / PAGE_SIZE_BYTES if inputs.dirty_rate_known else None,
        "available_bandwidth_mbps": inputs.bandwidth_mib_s * MIB * 8 / 1e6,
        "max_bandwidth_mib_s": record.parameters.bandwidth_mib_s,
        "total_time_ms": _measured(outcome.total_time_ms),
        "downtime_ms": outcome.downtime_ms,
        "transferred_kib": None if sent is None else sent * 1024,
        # the hosts' profile as stored in the inputs ('' for hosts without an advisor.profile label); `source` is
        # the profile the model was asked for, the model's default (snu) where none was given
        "host_profile": inputs.host_profile,
        "source": inputs.host_profile or "snu",
        "memory_used_mib": inputs.memory_mib if inputs.memory_source not in ("", "configured") else None,
        "max_downtime_ms": record.parameters.max_downtime_ms,
        "deadline_ms": record.parameters.deadline_ms,
        "working_set_mib": inputs.working_set_mib,
        "nonzero_memory_mib": inputs.nonzero_memory_mib,
        "resident_memory_mib": inputs.resident_memory_mib,
        "host_load_per_cpu": inputs.load_per_cpu,
        "outcome": _OUTCOME_OF[record.phase],
        "iterations": outcome.iterations,
        "postcopy_requests": outcome.postcopy_requests,
        "predicted_total_time_ms": p.total_time_ms.median,
        "predicted_downtime_ms": p.downtime_ms.median,
        "predicted_transferred_kib": p.transferred_mib.median * 1024,
        "predicted_converges": p.converges,
        "predicted_converge_probability": p.converge_probability,
        "model_name": p.model.name,
        "model_version": p.model.version,
        "finished_at_s": record.finished_at_s,
    }
