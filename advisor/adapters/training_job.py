"""The training job as a subprocess: the outcomes written as `advisor outcomes export` writes them, then
`python -m training.train_cost --outcomes FILE --promote --models-dir MODELS/cost --docs ''` (the promotion gate
decides), its output kept in the work directory. Whether it promoted is read from the registry (ACTIVE moved),
not from its output; the gate's reason and the version written are read from its output."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from advisor.domain.migration import MigrationRecord
from advisor.domain.retraining import RetrainResult
from advisor.features.dataset import outcome_row
from advisor.ml.registry import ArtifactError, read_active

OUTCOMES_FILE = "outcomes.csv"
LOG_FILE = "last-run.log"
STOPPED = "stopped with the advisor"


class SubprocessTrainingJob:
    def __init__(self, models_dir: Path, work_dir: Path, *, repo_dir: Path, arguments: Sequence[str] = (),
                 timeout_s: float = 3600.0, python: str = sys.executable) -> None:
        """`repo_dir`: where the `training` package is (the job runs there); `arguments`: added to the job's own
        (e.g. `--snu-sample 0.1`); a run longer than `timeout_s` is killed and failed."""
        self._cost_dir = Path(models_dir) / "cost"
        self._work_dir = Path(work_dir)
        self._repo_dir = Path(repo_dir)
        self._arguments = tuple(arguments)
        self._timeout_s = timeout_s
        self._python = python
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._stopped = False

    def command(self, outcomes_file: Path | None) -> list[str]:
        return [self._python, "-m", "training.train_cost", "--promote", "--models-dir", str(self._cost_dir),
                "--docs", "", *(("--outcomes", str(outcomes_file)) if outcomes_file is not None else ()),
                *self._arguments]

    def run(self, outcomes: Sequence[MigrationRecord]) -> RetrainResult:
        self._work_dir.mkdir(parents=True, exist_ok=True)
        rows = [row for r in outcomes if (row := outcome_row(r)) is not None]
        outcomes_file = None
        if rows:
            outcomes_file = self._work_dir / OUTCOMES_FILE
            pd.DataFrame(rows).to_csv(outcomes_file, index=False)
        before = self._active()
        log_path = self._work_dir / LOG_FILE
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(self._repo_dir), os.environ.get("PYTHONPATH", "")) if p)}
        with log_path.open("wb") as log_file:
            with self._lock:
                if self._stopped:
                    return RetrainResult("failed", "", STOPPED, None, len(rows))
                self._process = subprocess.Popen(self.command(outcomes_file), cwd=self._repo_dir, env=env,
                                                 stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT)
            try:
                code: int | None = self._process.wait(self._timeout_s)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
                code = None
            finally:
                with self._lock:
                    self._process = None
        output = log_path.read_text(encoding="utf-8", errors="replace")
        version, reason = _written(output), _said(output, "promotion: ")
        if self._stopped:
            return RetrainResult("failed", version, STOPPED, None, len(rows))
        if code is None:
            return RetrainResult("failed", version, f"killed after {self._timeout_s:g} s (see {log_path})", None,
                                 len(rows))
        if code != 0:
            last = output.strip().splitlines()[-1:] or [""]
            return RetrainResult("failed", version, f"exit code {code}: {last[0][:300]} (see {log_path})", code,
                                 len(rows))
        promoted = self._active() != before
        return RetrainResult("promoted" if promoted else "not promoted", version, reason, code, len(rows))

    def stop(self) -> None:
        """End a run under way (the advisor is stopping): the version it was writing is never activated."""
        with self._lock:
            self._stopped = True
            if self._process is not None:
                self._process.kill()

    def _active(self) -> str:
        try:
            return read_active(self._cost_dir)
        except ArtifactError:
            return ""


def _said(output: str, prefix: str) -> str:
    """The last line of the job's output that starts with `prefix`, without it."""
    lines = [line.removeprefix(prefix) for line in output.splitlines() if line.startswith(prefix)]
    return lines[-1] if lines else ""


def _written(output: str) -> str:
    """The version the job wrote, from its "wrote <models>/<version>; ACTIVE ..." line."""
    path = _said(output, "wrote ").split(";")[0].strip()
    return Path(path).name if path else ""
