"""How long a live migration takes: a pluggable model, CloudSim's RAM / (BW / 2) by default.

A model is any callable ``(ram_mb, cpu_utilization, bandwidth_mbit_s) -> seconds`` on equal-length float64
arrays, one element per migration started at the same update:

- ``ram_mb``: the VM's memory to move, MB (its RAM, or the memory in use when the trace has it);
- ``cpu_utilization``: the VM's CPU utilisation at the start, a fraction of its MIPS in [0, 1];
- ``bandwidth_mbit_s``: the target host's link, Mbit/s.

It must return positive, finite seconds. The simulator calls it once per update with every migration that starts
then (vectorised), so a learned model pays its overhead once per step, not once per VM.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from advisor.simulation.arrays import FloatArray


class MigrationTimeModel(Protocol):
    def __call__(self, ram_mb: FloatArray, cpu_utilization: FloatArray, bandwidth_mbit_s: FloatArray) -> FloatArray:
        """Seconds per migration."""
        ...


def cloudsim_migration_time(
    ram_mb: FloatArray, cpu_utilization: FloatArray, bandwidth_mbit_s: FloatArray
) -> FloatArray:
    """CloudSim's PowerDatacenter: half the link carries the migration, the other half the VM's own traffic.

    Written as RAM / (BW / 16) so that 1,000 Mbit/s gives exactly CloudSim's 62.5 MB/s (and the same floats).
    """
    del cpu_utilization  # CloudSim ignores how busy the VM is; dirty pages are not modelled
    seconds: FloatArray = np.asarray(ram_mb, dtype=np.float64) / (np.asarray(bandwidth_mbit_s) / 16.0)
    return seconds
