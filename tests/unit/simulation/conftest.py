"""The shared data lives next to the project (../shared/data), as the data README says."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support import REPO

DATA = REPO.parent / "shared" / "data"
PLANETLAB_DAY = DATA / "planetlab" / "20110303.csv.gz"


@pytest.fixture(scope="session")
def planetlab_day() -> Path:
    assert PLANETLAB_DAY.is_file(), f"shared data not found: {PLANETLAB_DAY} (see ../shared/data/README.md)"
    return PLANETLAB_DAY
