"""Pre-copy with a writable working set (a hot/cold split of memory) and the first pass QEMU really sends.

The analytic model (`rounds.analytic_arrays`) lets a round dirty `min(rate x round time, memory)`: a guest that
writes at 40 MiB/s is taken to dirty 400 MiB during a 10 s round, even when it rewrites the same 16 MiB over and
over. Here a round re-sends `min(working set, rate x round time)`: only the hot pages are rewritten, the cold ones
are sent once. And the first pass sends the non-zero pages where they are known (QEMU sends a zero page as a
flag: an idle 128 MiB guest whose memory in use read 26 MiB sent 87 MiB, its non-zero pages), else the memory
given. Everything else is the analytic model's: QEMU's stop rule, auto-converge's throttle steps, XBZRLE and
compression ratios, post-copy as one pass (over the non-zero pages).

NOT wired into the served model: the learned models read `analytic_arrays` as features and their schema hash
covers its constants (advisor.ml.cost_features); serving these figures instead needs a retrain and a new schema.
"""

from __future__ import annotations

import numpy as np

from advisor.physics.rounds import (
    DEFAULT_CONSTANTS,
    AnalyticArrays,
    AnalyticConstants,
    FloatArray,
    IntArray,
    simulate,
)


def working_set_arrays(
    technique_code: IntArray,
    memory_mib: FloatArray,
    working_set_mib: FloatArray,
    dirty_rate_mib_s: FloatArray,
    usable_mib_s: FloatArray,
    max_downtime_ms: FloatArray | float,
    nonzero_mib: FloatArray | None = None,
    c: AnalyticConstants = DEFAULT_CONSTANTS,
) -> AnalyticArrays:
    """Every row's migration with its working set (NaN: unknown, then all of memory may be rewritten, as in the
    analytic model) and its non-zero pages (None or NaN: unknown, then the first pass sends `memory_mib`)."""
    memory = np.asarray(memory_mib, dtype=np.float64)
    # non-zero pages may exceed the memory in use the guest reports (the 87 MiB above): they replace it
    first = memory if nonzero_mib is None else np.maximum(np.asarray(nonzero_mib, dtype=np.float64), 0.0)
    first = np.where(np.isnan(first), memory, first)
    hot = np.fmin(np.asarray(working_set_mib, dtype=np.float64), np.fmax(memory, first))
    return simulate(technique_code, first, hot, dirty_rate_mib_s, usable_mib_s, max_downtime_ms, c)
