#!/usr/bin/env bash
# The test command: set-up (idempotent), then lint, type-check and the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "[test] ruff"
.venv/bin/ruff check advisor training tests benchmarks
echo "[test] mypy (strict on the package)"
.venv/bin/mypy
echo "[test] import contracts (layers, see pyproject.toml)"
.venv/bin/lint-imports --no-logo
echo "[test] pytest"
# two workers: the unit tests run beside the tests of real processes, which keep to one worker (tests/conftest.py)
.venv/bin/pytest -n 2 "$@"
