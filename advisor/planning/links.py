"""A migration's share of the links it runs on: the one rule by which the plan's schedule (its waves and times, a
drain's predicted end) and the executor's queue price a move that runs beside others.

Each host's link is its migration bandwidth (`Host.network_bandwidth_mib_s`). The migrations running out of a
host split its link evenly, and those running into a host split that one; a migration gets the lower of its two
shares, and never more than its own cap (QEMU's max-bandwidth, `MigrationParameters.bandwidth_mib_s`).
"""

from __future__ import annotations

from typing import overload

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]


@overload
def link_share(source_mib_s: float, target_mib_s: float, out_of_source: int, into_target: int,
               cap_mib_s: float = ...) -> float: ...


@overload
def link_share(source_mib_s: FloatArray, target_mib_s: FloatArray, out_of_source: FloatArray | int,
               into_target: FloatArray | int, cap_mib_s: FloatArray | float = ...) -> FloatArray: ...


def link_share(source_mib_s: float | FloatArray, target_mib_s: float | FloatArray, out_of_source: FloatArray | int,
               into_target: FloatArray | int, cap_mib_s: FloatArray | float = np.inf) -> float | FloatArray:
    """The bandwidth (MiB/s) of one migration while `out_of_source` migrations leave its source and `into_target`
    enter its target, itself counted on both: min(source / out_of_source, target / into_target, cap). Scalars give
    a float; arrays broadcast."""
    if np.any(np.asarray(out_of_source) < 1) or np.any(np.asarray(into_target) < 1):
        raise ValueError(f"a migration shares its links at least with itself: got {out_of_source} out of its "
                         f"source and {into_target} into its target")
    for name, value in (("source link", source_mib_s), ("target link", target_mib_s), ("cap", cap_mib_s)):
        if not np.all(np.asarray(value, dtype=np.float64) > 0):
            raise ValueError(f"a migration's {name} must be above 0 MiB/s: got {value}")
    share = np.minimum(np.minimum(np.divide(source_mib_s, out_of_source), np.divide(target_mib_s, into_target)),
                       cap_mib_s)
    if np.ndim(share) == 0:
        return float(share)
    shared: FloatArray = np.asarray(share, dtype=np.float64)
    return shared
