"""Pushed VM samples as columns (ids, times, values), checked and stored as arrays: at 100,000 samples a second a
Python object per sample, and its checks one by one, took most of the one interpreter lock (issue 17).

The checks here are those of a push (advisor.domain.pushes.check_samples, advisor.domain.validation.vm_sample_fine)
told as a yes or no for the whole batch. A batch they refuse goes back to the per-sample checks (`samples()`),
which name the first sample and field at fault, as for any push.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter

import numpy as np
import numpy.typing as npt

from advisor.domain.model import Vm, VmSample
from advisor.domain.pushes import MAX_SAMPLES_PER_PUSH
from advisor.domain.validation import (
    EARLIEST_SAMPLE_S,
    ID_PATTERN,
    MAX_DIRTY_RATE_MIB_S,
    MAX_FUTURE_SKEW_S,
    MAX_RESIDENT_MEMORY_MIB,
    MAX_VM_MEMORY_MIB,
)

# The fields a pushed VM sample measures, in the order of the columns, and the most each may be (vm_sample_fine)
MEASURED = ("cpu_utilization", "memory_used_mib", "dirty_rate_mib_s", "working_set_mib", "resident_memory_mib")
_MOST = np.array([1.0, MAX_VM_MEMORY_MIB, MAX_DIRTY_RATE_MIB_S, MAX_VM_MEMORY_MIB, MAX_RESIDENT_MEMORY_MIB])
_MEMORY, _WORKING_SET = MEASURED.index("memory_used_mib"), MEASURED.index("working_set_mib")
# ids one a line, each of the id pattern: checked in one match over the batch
_IDS = re.compile(rf"{ID_PATTERN.pattern}(?:\n{ID_PATTERN.pattern})*")
_memory_mib = attrgetter("memory_mib")


@dataclass(frozen=True, slots=True)
class VmColumns:
    """VM samples: their `ids`, `times_s` (seconds since the epoch) and `values[sample, field]` of the MEASURED
    fields, NaN where a sample does not measure one (so a value given must be finite: whoever builds the columns
    sends any other sample the per-sample way, whose checks say what is wrong with it)."""

    ids: list[str]
    times_s: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, at: slice) -> VmColumns:
        return VmColumns(self.ids[at], self.times_s[at], self.values[at])

    def take(self, order: npt.NDArray[np.int64]) -> VmColumns:
        """The samples in `order` (indices)."""
        return VmColumns(list(map(self.ids.__getitem__, order.tolist())), self.times_s[order], self.values[order])

    def samples(self) -> list[VmSample]:
        """One VmSample each, as the per-sample way reads them from a message (which has no disk write rate)."""
        values = self.values.astype(object)
        values[np.isnan(self.values)] = None
        return [VmSample(vm_id, time_s, cpu, memory, dirty, working_set, None, resident)
                for vm_id, time_s, (cpu, memory, dirty, working_set, resident)  # MEASURED, in its order
                in zip(self.ids, self.times_s.tolist(), values.tolist(), strict=True)]

    def fine(self, vms: Sequence[Vm | None], now_s: float) -> bool:
        """Whether a push of these samples passes its checks (check_samples), `vms` the inventory's VM of each
        sample (None: not in the inventory)."""
        n = len(self.ids)
        if n > MAX_SAMPLES_PER_PUSH or not n:
            return not n
        # the known VMs (a Vm is always true), without `None in vms`, which calls Vm.__eq__ for each
        memory_mib = np.fromiter(map(_memory_mib, filter(None, vms)), dtype=np.float64)
        if len(memory_mib) < n or not _IDS.fullmatch("\n".join(self.ids)):
            return False
        if not ((self.times_s >= EARLIEST_SAMPLE_S) & (self.times_s <= now_s + MAX_FUTURE_SKEW_S)).all():
            return False
        given = ~np.isnan(self.values)
        if (given & ~((self.values >= 0) & (self.values <= _MOST))).any():
            return False
        if (self.values[:, _MEMORY] > memory_mib).any() or (self.values[:, _WORKING_SET] > memory_mib).any():
            return False  # NaN (not measured) is never above
        # at most one per VM and time (each VM once, as a collector sends them: told from the ids alone)
        return len(set(self.ids)) == n or len(set(zip(self.ids, self.times_s.tolist(), strict=True))) == n
