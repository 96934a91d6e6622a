"""The shared PlanetLab data lives next to the project (../shared/data)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
PLANETLAB_DAY = REPO.parent / "shared" / "data" / "planetlab" / "20110303.csv.gz"


@pytest.fixture(scope="session")
def planetlab_day() -> Path:
    assert PLANETLAB_DAY.is_file(), f"shared data not found: {PLANETLAB_DAY} (see ../shared/data/README.md)"
    return PLANETLAB_DAY
