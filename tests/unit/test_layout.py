"""The house rules a newcomer relies on: small modules, layers that the import contracts really enforce, and
every decision knob reachable from the settings."""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
from pathlib import Path

from advisor.config import Settings, policies
from tests.support import REPO

MAX_LINES = 400
GENERATED = ("advisor/api/v1/",)


def test_no_module_of_the_package_is_longer_than_about_400_lines() -> None:
    long = {}
    for path in sorted((REPO / "advisor").rglob("*.py")):
        relative = path.relative_to(REPO).as_posix()
        if relative.startswith(GENERATED):
            continue
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES:
            long[relative] = lines
    assert not long, f"split these modules (at most {MAX_LINES} lines): {long}"


def test_the_import_contracts_catch_a_layer_violation(tmp_path: Path) -> None:
    """A copy of the package whose domain imports storage must break a contract."""
    shutil.copytree(REPO / "advisor", tmp_path / "advisor", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    lint = [str(Path(sys.executable).parent / "lint-imports"), "--no-cache", "--no-logo"]
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}  # the copy, not the installed package, is analysed
    clean = subprocess.run(lint, check=False, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert clean.returncode == 0, clean.stdout[-2000:]
    model = tmp_path / "advisor" / "domain" / "model.py"
    model.write_text(model.read_text() + "\nimport advisor.adapters.sqlite.db  # noqa\n")
    broken = subprocess.run(lint, check=False, cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert broken.returncode != 0
    assert "The domain imports nothing else of the package" in broken.stdout and "BROKEN" in broken.stdout


def test_every_decision_knob_of_the_settings_reaches_its_policy() -> None:
    prefixes = {"placement_": ("filters", "weights"), "technique_": ("technique",), "plan_": ("plans",),
                "monitor_": ("tuning",)}
    default = policies(Settings())
    for field in dataclasses.fields(Settings):
        knobs = next((k for p, k in prefixes.items() if field.name.startswith(p)), None)
        if knobs is None:
            continue
        value = getattr(Settings(), field.name)
        special = {"technique_fallback": "downtime", "technique_postcopy_forbidden_clusters": ("east",)}
        other = special[field.name] if field.name in special else (
            value * 2 + 1 if not isinstance(value, str) else "")
        changed = policies(Settings(**{field.name: other}))  # type: ignore[arg-type]
        assert any(getattr(changed, k) != getattr(default, k) for k in knobs), f"setting {field.name} changes nothing"
