"""The training package makes LightGBM's OpenMP threads sleep while they wait, unless told otherwise."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

READ = "import os, training; print(os.environ['OMP_WAIT_POLICY'])"


@pytest.mark.parametrize(("given", "seen"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_openmp_threads_wait_passively_unless_told_otherwise(given: str | None, seen: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if given:
        env["OMP_WAIT_POLICY"] = given
    out = subprocess.run([sys.executable, "-c", READ], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == seen
