"""What `advisor predict cost` refuses of its input CSV, row by row, before anything is predicted (the physics
serve the batch: no trained model needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from advisor.ml.batch import BatchInputError, predict_csv
from advisor.ml.predictor import AnalyticPredictor

HEADER = "technique,vm_memory_mib,dirty_rate_pages_per_s,available_bandwidth_mbps,max_bandwidth_mib_s"


def refused(tmp_path: Path, text: str) -> str:
    """The message refusing `text` as an input file; nothing is written."""
    src, dst = tmp_path / "in.csv", tmp_path / "out.csv"
    src.write_text(text)
    with pytest.raises(BatchInputError) as caught:
        predict_csv(src, dst, AnalyticPredictor())
    assert not dst.exists()
    return str(caught.value)


def test_a_header_alone_is_refused(tmp_path: Path) -> None:
    assert "no rows: the file has a header and nothing else" in refused(tmp_path, HEADER + "\n")
