"""Array type aliases shared by the simulation modules (numpy only)."""

from __future__ import annotations

from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]
BoolArray = NDArray[np.bool_]

A = TypeVar("A", bound=NDArray[Any])


def frozen(array: A) -> A:
    """A read-only view, so that values handed to policies cannot change the simulator's state."""
    view = array.view()
    view.flags.writeable = False
    return view
