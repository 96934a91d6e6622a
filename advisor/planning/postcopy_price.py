"""Post-copy's price. From the switch to the end (its exposure: the memory still to send over the bandwidth) a
failure of either host or the link loses the guest, and the guest runs slower while its pages fault in (a share of
its time: the rate it touches memory, its dirty rate, over the bandwidth that brings the pages, at most all of it).
Its harm, in milliseconds of guest pause, is exposure x (slowdown + the weight of exposure): what the technique
policy (advisor.planning.technique) adds to post-copy's rank, for one move and, over arrays, for plans."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import numpy.typing as npt

Number = TypeVar("Number", float, npt.NDArray[np.float64])


def postcopy_exposure_ms(remaining_mib: Number, bandwidth_mib_s: Number) -> Number:
    """How long post-copy runs after the switch: what is left to send over the bandwidth."""
    exposure: Number = remaining_mib / np.maximum(bandwidth_mib_s, 1e-9) * 1000.0
    return exposure


def postcopy_slowdown(dirty_rate_mib_s: Number, bandwidth_mib_s: Number) -> Number:
    """The share of the guest's time lost to page faults in post-copy: it touches memory at its dirty rate and
    waits for the pages the link brings, at most all of its time."""
    share: Number = np.minimum(1.0, dirty_rate_mib_s / np.maximum(bandwidth_mib_s, 1e-9))
    return share


def postcopy_harm_ms(exposure_ms: Number, slowdown: Number, exposure_weight: float) -> Number:
    """Post-copy's cost to the guest in milliseconds of pause: the time it runs slowed plus its exposure, weighted."""
    harm: Number = exposure_ms * (slowdown + exposure_weight)
    return harm
