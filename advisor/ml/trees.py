"""LightGBM text models evaluated by one compiled loop (numba) instead of LightGBM's predictor.

For the few rows of one question (five techniques of one VM, and the same at its burst dirty rate) LightGBM's
predictor spends 100-500 us per model in call and per-row set-up; the same trees walked by a compiled loop over
flat arrays take 5-30 us (`benchmarks/bench_predict.py`). The loop takes LightGBM's decisions
(Tree::NumericalDecision, Tree::CategoricalDecision) and sums the leaves in tree order as LightGBM does, so a
prediction is the same double LightGBM gives (tests/unit/ml/test_trees.py checks every shipped model).

`Forest` reads LightGBM's own text format (what training writes) and refuses, with TreeFormatError, what the loop
does not evaluate: linear trees, several trees per iteration, an averaged (random forest) output, an objective whose
output is neither the raw sum nor its sigmoid. The loop is compiled once per machine (numba's cache beside this
module, or where advisor/__init__.py puts it for a user who cannot write here; about 2 s without it) and runs
without the GIL.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Final

import numba
import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

# Objectives whose prediction is the raw sum of the leaves (LightGBM's identity output transform).
RAW_OBJECTIVES: Final = frozenset({"regression", "regression_l1", "huber", "fair", "quantile", "mape"})
# LightGBM's kZeroThreshold: inputs this close to 0 are read as 0, and "zero as missing" means within it.
ZERO: Final = float(np.float32(1e-35))
_CATEGORICAL, _DEFAULT_LEFT = 1, 2  # decision_type bits; bits 2-3: missing type (0 none, 1 zero, 2 NaN)
_MISSING_ZERO, _MISSING_NAN = 1, 2


class TreeFormatError(ValueError):
    """A model file the compiled loop cannot evaluate exactly; the message says what."""


@numba.njit(cache=True, nogil=True)
def _walk(x: Any, roots: Any, feature: Any, threshold: Any, decision: Any, left: Any, right: Any, leaf_value: Any,
          cat_start: Any, cat_bits: Any, out: Any) -> None:  # pragma: no cover - compiled
    """out[i] = the sum over trees of the leaf row i reaches. Nodes and leaves of all trees share flat arrays; a
    child (or root) < 0 is the leaf ~child."""
    for i in range(x.shape[0]):
        total = 0.0
        for t in range(roots.shape[0]):
            node = roots[t]
            while node >= 0:
                v = x[i, feature[node]]
                d = decision[node]
                if d & _CATEGORICAL:
                    go_left = False
                    if not math.isnan(v) and v > -1.0:  # NaN and negative categories go right
                        category = int(v)
                        k = int(threshold[node])
                        word = category >> 5
                        if word < cat_start[k + 1] - cat_start[k]:
                            go_left = (cat_bits[cat_start[k] + word] >> (category & 31)) & 1 == 1
                # LightGBM's numerical decision with the plain comparison first, the node's missing type read only
                # for NaN and zero (fewer branches that differ from node to node): NaN goes the default way where
                # NaN or zero is missing, else it is 0; a zero goes the default way where zero is missing
                elif math.isnan(v):
                    missing = (d >> 2) & 3
                    go_left = ((d & _DEFAULT_LEFT) != 0 if missing in (_MISSING_NAN, _MISSING_ZERO)
                               else threshold[node] >= 0.0)
                elif -ZERO <= v <= ZERO:
                    go_left = (d & _DEFAULT_LEFT) != 0 if (d >> 2) & 3 == _MISSING_ZERO else threshold[node] >= 0.0
                else:
                    go_left = v <= threshold[node]
                node = left[node] if go_left else right[node]
            total += leaf_value[~node]
        out[i] = total


@numba.njit(cache=True, nogil=True)
def _sigmoid(out: Any, scale: float) -> None:
    """LightGBM's binary output, in place, with the C library's exp as LightGBM calls it: NumPy's own vectorised
    exp (AVX-512) can differ from it in the last bit."""
    for i in range(out.shape[0]):
        out[i] = 1.0 / (1.0 + math.exp(-scale * out[i]))


def _fields(block: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in block.splitlines() if "=" in line)


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split()]


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split()]


class Forest:
    """One LightGBM model's trees as flat arrays: `predict(x)` is what `lightgbm.Booster.predict(x)` gives for a
    float matrix (all trees used)."""

    def __init__(self, text: str, name: str = "model") -> None:
        header, found, body = text.partition("\nTree=")
        if not found:
            raise TreeFormatError(f"{name}: no trees (not a LightGBM text model)")
        head = _fields(header)
        objective = head.get("objective", "").split()
        if head.get("num_tree_per_iteration", "1") != "1" or "average_output" in header.split():
            raise TreeFormatError(f"{name}: several trees per iteration or an averaged output are not evaluated")
        if not objective or objective[0] not in RAW_OBJECTIVES | {"binary"}:
            raise TreeFormatError(f"{name}: objective {head.get('objective')!r} is not evaluated")
        self._sigmoid = float(objective[1].partition(":")[2]) if objective[0] == "binary" else None
        self._features = int(head["max_feature_idx"]) + 1
        feature: list[int] = []
        threshold: list[float] = []
        decision: list[int] = []
        left: list[int] = []
        right: list[int] = []
        leaves: list[float] = []
        roots: list[int] = []
        cat_start, cat_bits = [0], list[int]()
        for block in body.partition("\nend of trees")[0].split("\nTree="):
            tree = _fields(block)
            if tree.get("is_linear", "0") != "0":
                raise TreeFormatError(f"{name}: linear trees are not evaluated")
            node0, leaf0, cat0 = len(feature), len(leaves), len(cat_start) - 1
            values = _floats(tree["leaf_value"])
            if int(tree["num_leaves"]) != len(values):
                raise TreeFormatError(f"{name}: a tree's leaf count does not match its leaves")
            leaves += values
            if len(values) == 1:
                roots.append(~leaf0)
                continue
            roots.append(node0)
            kinds = _ints(tree["decision_type"])
            feature += _ints(tree["split_feature"])
            threshold += [t + cat0 if d & _CATEGORICAL else t for t, d in zip(_floats(tree["threshold"]), kinds,
                                                                              strict=True)]
            decision += kinds
            for children, side in ((tree["left_child"], left), (tree["right_child"], right)):
                side += [c + node0 if c >= 0 else ~(~c + leaf0) for c in _ints(children)]
            if int(tree.get("num_cat", "0")) > 0:
                cat_start += [len(cat_bits) + b for b in _ints(tree["cat_boundaries"])[1:]]
                cat_bits += _ints(tree["cat_threshold"])
        if not roots or len({len(feature), len(threshold), len(decision), len(left), len(right)}) != 1:
            raise TreeFormatError(f"{name}: malformed trees")
        if feature and not 0 <= min(feature) <= max(feature) < self._features:
            raise TreeFormatError(f"{name}: a split reads a feature beyond max_feature_idx")
        self._arrays = (np.array(roots, np.int32), np.array(feature, np.int32), np.array(threshold, np.float64),
                        np.array(decision, np.int8), np.array(left, np.int32), np.array(right, np.int32),
                        np.array(leaves, np.float64), np.array(cat_start, np.int64), np.array(cat_bits, np.uint32))
        self.predict(np.zeros((1, self._features)))  # compiles the loop (or loads it from numba's cache) now

    @classmethod
    def from_file(cls, path: Path) -> Forest:
        return cls(Path(path).read_text(encoding="utf-8"), str(path))

    def num_feature(self) -> int:
        return self._features

    def num_trees(self) -> int:
        return len(self._arrays[0])

    def predict(self, x: npt.ArrayLike) -> FloatArray:
        rows = np.ascontiguousarray(x, dtype=np.float64)
        if rows.ndim != 2 or rows.shape[1] != self._features:
            raise ValueError(f"expected rows of {self._features} features, got shape {rows.shape}")
        out = np.empty(len(rows), dtype=np.float64)
        _walk(rows, *self._arrays, out)
        if self._sigmoid is not None:
            _sigmoid(out, self._sigmoid)
        return out
