"""A sample's time as the gap since the sample before it, in two bytes (advisor.features.series_store): to the
millisecond up to 32.767 s, in whole seconds (rounded down, so that a time is never later than the one given and
order is kept) from 33 s to 32,800 s (9.1 hours)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

EXACT_GAP_MS = 2**15 - 1  # gaps up to this are kept to the millisecond (codes below 2**15)...
FIRST_SECONDS = 33  # ... longer ones in whole seconds from this one on (codes from 2**15)
MAX_GAP_MS = (2**15 - 1 + FIRST_SECONDS) * 1000  # 32,800 s: the longest gap two bytes hold


def gap_code(gap_ms: int) -> tuple[int, int]:
    """The code of a gap (1 to MAX_GAP_MS milliseconds) and the gap it stands for: the gap itself up to
    EXACT_GAP_MS, else its whole seconds (33 s at least; a gap just above EXACT_GAP_MS stands for EXACT_GAP_MS)."""
    if gap_ms <= EXACT_GAP_MS:
        return gap_ms, gap_ms
    seconds = gap_ms // 1000
    if seconds < FIRST_SECONDS:
        return EXACT_GAP_MS, EXACT_GAP_MS
    return 2**15 + seconds - FIRST_SECONDS, seconds * 1000


def gap_codes(gap_ms: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.int64]]:
    """`gap_code` of each gap (between 1 and MAX_GAP_MS)."""
    if not gap_ms.size or gap_ms.max() <= EXACT_GAP_MS:  # the usual case: samples seconds apart
        return gap_ms.astype(np.uint16), gap_ms
    seconds = gap_ms // 1000
    exact, coarse = gap_ms <= EXACT_GAP_MS, seconds >= FIRST_SECONDS
    codes = np.where(exact, gap_ms, np.where(coarse, 2**15 + seconds - FIRST_SECONDS, EXACT_GAP_MS))
    return codes.astype(np.uint16), np.where(exact, gap_ms, np.where(coarse, seconds * 1000, EXACT_GAP_MS))


def gap_ms(code: int) -> int:
    """The gap a code stands for."""
    return code if code < 2**15 else (code - 2**15 + FIRST_SECONDS) * 1000


def gaps_ms(codes: npt.NDArray[np.uint16]) -> npt.NDArray[np.int64]:
    c = codes.astype(np.int64)
    if not c.size or c.max() < 2**15:  # the usual case: every gap to the millisecond
        return c
    return np.where(c < 2**15, c, (c - 2**15 + FIRST_SECONDS) * 1000)


def kept_exactly(gap_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """Which gaps (positive) a code stands for exactly: up to EXACT_GAP_MS, or whole seconds up to MAX_GAP_MS."""
    whole_seconds = (gap_ms % 1000 == 0) & (gap_ms >= FIRST_SECONDS * 1000) & (gap_ms <= MAX_GAP_MS)
    result: npt.NDArray[np.bool_] = (gap_ms <= EXACT_GAP_MS) | whole_seconds
    return result
