"""The physics of live migration, below the learned models (advisor.ml) and the planner (advisor.planning): the
analytic model over arrays (`rounds`), its answer per row of MigrationInputs (`costs`), the hard guards on
convergence (`guards`), pre-copy with a writable working set and the first pass QEMU sends (`working_set`: the
physics the learned models read as features and host profiles are fitted on) and when a dirty-rate reading is
blind (`measurement`), what encrypting the stream costs (`transport`), copying local disks with a live move
(`disk`), and cold migration's cost, a sum of steps
(`cold`), which the learned models do not predict. It imports only the domain and numpy (an import contract says
so)."""

from advisor.physics.cold import COLD_MODEL, DEFAULT_COLD, ColdConstants, cold_cost
from advisor.physics.costs import ANALYTIC_MODEL, analytic_costs, analytic_point, predict_analytic, validate
from advisor.physics.disk import bulk_copy, memory_part, with_disk_copy
from advisor.physics.guards import (
    GUARD_BUDGETS,
    Guard,
    apply_guards,
    deadline_shorter_than_pass,
    dirties_faster_than_sent,
    effective_rate,
    guard_verdicts,
    taken_dirty_rate,
    working_set_fits,
)
from advisor.physics.measurement import BUSY_VCPU_UTILIZATION, ZERO_READING_MIB, blind_dirty_rate
from advisor.physics.rounds import (
    DEFAULT_CONSTANTS,
    DEFAULT_DOWNTIME_MS,
    TECHNIQUES,
    AnalyticArrays,
    AnalyticConstants,
    BoolArray,
    FloatArray,
    IntArray,
    analytic_arrays,
    one_pass_ms,
    send_ratios,
    simulate,
)
from advisor.physics.transport import TLS_THROUGHPUT_FACTOR, encrypted_bandwidth
from advisor.physics.working_set import (
    QEMU_OWN_RESIDENT_MIB,
    first_pass_mib,
    longest_window_working_set,
    resident_fits_vm,
    resident_guest_mib,
    working_set_arrays,
)

__all__ = [
    "ANALYTIC_MODEL",
    "BUSY_VCPU_UTILIZATION",
    "COLD_MODEL",
    "DEFAULT_COLD",
    "DEFAULT_CONSTANTS",
    "DEFAULT_DOWNTIME_MS",
    "GUARD_BUDGETS",
    "QEMU_OWN_RESIDENT_MIB",
    "TECHNIQUES",
    "TLS_THROUGHPUT_FACTOR",
    "ZERO_READING_MIB",
    "AnalyticArrays",
    "AnalyticConstants",
    "BoolArray",
    "ColdConstants",
    "FloatArray",
    "Guard",
    "IntArray",
    "analytic_arrays",
    "analytic_costs",
    "analytic_point",
    "apply_guards",
    "blind_dirty_rate",
    "bulk_copy",
    "cold_cost",
    "deadline_shorter_than_pass",
    "dirties_faster_than_sent",
    "effective_rate",
    "encrypted_bandwidth",
    "first_pass_mib",
    "guard_verdicts",
    "longest_window_working_set",
    "memory_part",
    "one_pass_ms",
    "predict_analytic",
    "resident_fits_vm",
    "resident_guest_mib",
    "send_ratios",
    "simulate",
    "taken_dirty_rate",
    "validate",
    "with_disk_copy",
    "working_set_arrays",
    "working_set_fits",
]
