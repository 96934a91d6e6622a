#!/usr/bin/env bash
# The main job: set-up (idempotent), then the advisor on its embedded default with the bundled example cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/advisor demo "$@"
