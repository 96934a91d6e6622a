"""Retraining in the service: when (a table of the pure decision), the periodic check around a job (one run at a
time, results exported and logged, a job that cannot start is a failed run), and the subprocess adapter on a
stand-in `training.train_cost` (the real job runs in tests/integration/test_retraining.py)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from advisor.adapters.memory import ManualClock
from advisor.adapters.training_job import SubprocessTrainingJob
from advisor.config import Settings, load_settings
from advisor.domain.errors import ConfigError
from advisor.domain.migration import MigrationRecord, MigrationResult, Phase
from advisor.domain.model import MigrationInputs, MigrationParameters, Technique
from advisor.domain.retraining import RetrainPolicy, RetrainResult, retrain_trigger
from advisor.metrics import AdvisorMetrics
from advisor.ml.predictor import AnalyticPredictor
from advisor.usecases.retraining import Retraining

DAY = 86_400.0


@pytest.mark.parametrize(("policy", "since_last_s", "new_outcomes", "drift", "expected"), [
    (RetrainPolicy(), 10 * DAY, 1000, True, None),  # off: neither a schedule nor drift
    (RetrainPolicy(interval_s=DAY), DAY - 1, 0, False, None),
    (RetrainPolicy(interval_s=DAY), DAY, 0, False, "schedule"),  # due, with or without new outcomes
    (RetrainPolicy(interval_s=DAY), 2 * DAY, 50, True, "schedule"),
    (RetrainPolicy(on_drift=True), 10 * DAY, 1000, False, None),  # no drift: no run
    (RetrainPolicy(on_drift=True, drift_min_outcomes=10), 60, 10, True, "drift"),
    (RetrainPolicy(on_drift=True, drift_min_outcomes=10), 10 * DAY, 9, True, None),  # too few since the last run
    (RetrainPolicy(on_drift=False), 10 * DAY, 1000, True, None),  # drift seen, but not a trigger
    (RetrainPolicy(interval_s=DAY, on_drift=True), 60, 12, True, "drift"),  # drift before the schedule
    (RetrainPolicy(interval_s=DAY, on_drift=True), DAY, 12, True, "schedule"),
])
def test_when_to_retrain(policy: RetrainPolicy, since_last_s: float, new_outcomes: int, drift: bool,
                         expected: str | None) -> None:
    assert retrain_trigger(policy, now_s=1000 + since_last_s, last_run_s=1000, new_outcomes=new_outcomes,
                           drift=drift) == expected


INPUTS = MigrationInputs(1024, 20, 100, 100, 300, host_profile="lab", memory_configured_mib=2048)


def outcome(op: str, phase: Phase, finished_s: float) -> MigrationRecord:
    predicted = AnalyticPredictor().predict(INPUTS, Technique.PRECOPY)
    result = MigrationResult(phase is Phase.SUCCEEDED, total_time_ms=12000, downtime_ms=30, transferred_mib=1100)
    return MigrationRecord(op, "r1", "vm1", "a", "b", MigrationParameters(Technique.PRECOPY, 100, 300), predicted,
                           0.0, phase=phase, outcome=result, inputs=INPUTS, finished_at_s=finished_s)


class Outcomes:
    def __init__(self) -> None:
        self.records: list[MigrationRecord] = []

    def __call__(self, since_s: float = 0.0) -> list[MigrationRecord]:
        return [r for r in self.records if (r.finished_at_s or 0.0) >= since_s]


class Job:
    def __init__(self, result: RetrainResult | Exception) -> None:
        self.result = result
        self.given: list[int] = []
        self.during: list[RetrainResult | None] = []
        self.check_during: Retraining | None = None

    def run(self, outcomes: Sequence[MigrationRecord]) -> RetrainResult:
        self.given.append(len(outcomes))
        if self.check_during is not None:  # another check while this run is under way, from another thread
            other = threading.Thread(target=lambda: self.during.append(self.check_during.run_if_due()))  # type: ignore[union-attr]
            other.start()
            other.join()
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def retraining(job: Job, outcomes: Outcomes, clock: ManualClock, metrics: AdvisorMetrics, drift: list[bool],
               policy: RetrainPolicy) -> Retraining:
    ticks = iter(range(0, 10_000, 7))
    return Retraining(policy, job, outcomes, lambda: drift[0], metrics, clock, lambda: float(next(ticks)))


def test_drift_runs_once_then_waits_for_new_outcomes_and_exports_the_result() -> None:
    clock, outcomes, metrics, drift = ManualClock(), Outcomes(), AdvisorMetrics(CollectorRegistry()), [True]
    job = Job(RetrainResult("promoted", "2.1.0", "promoted; passed", 0, 3))
    check = retraining(job, outcomes, clock, metrics, drift, RetrainPolicy(on_drift=True, drift_min_outcomes=2))
    outcomes.records += [outcome("old", Phase.SUCCEEDED, clock() - 100)]  # before the service started
    clock.advance(10)
    outcomes.records += [outcome("a", Phase.SUCCEEDED, clock()), outcome("b", Phase.ABORTED, clock())]
    assert check.run_if_due() is None  # one measured outcome since the start: the abort is censored
    outcomes.records += [outcome("c", Phase.SUCCEEDED, clock())]
    clock.advance(1)
    assert check.run_if_due() == job.result
    assert job.given == [4]  # every stored outcome goes to the job
    assert check.run_if_due() is None  # still drifting, but nothing new since the run
    assert metrics.registry.get_sample_value("advisor_retrains_total", {"trigger": "drift", "result": "promoted"}) == 1
    assert metrics.registry.get_sample_value("advisor_retrain_last_duration_seconds") == 7
    assert metrics.registry.get_sample_value("advisor_retrain_last_finished_timestamp_seconds") == clock()


def test_runs_never_overlap_and_a_job_that_cannot_start_is_a_failed_run() -> None:
    clock, outcomes, metrics = ManualClock(), Outcomes(), AdvisorMetrics(CollectorRegistry())
    job = Job(OSError("no python"))
    check = retraining(job, outcomes, clock, metrics, [False], RetrainPolicy(interval_s=60))
    job.check_during = check
    assert check.run_if_due() is None
    clock.advance(60)
    result = check.run_if_due()
    assert result == RetrainResult("failed", "", "OSError: no python", None, 0)
    assert job.during == [None]  # the check made while the job ran started nothing
    assert job.given == [0]
    assert metrics.registry.get_sample_value("advisor_retrains_total", {"trigger": "schedule", "result": "failed"}) == 1
    clock.advance(59)
    assert check.run_if_due() is None  # the schedule counts from the last run's start


STAND_IN = """
import sys
from pathlib import Path
args = sys.argv[1:]
models = Path(args[args.index("--models-dir") + 1])
outcomes = args[args.index("--outcomes") + 1] if "--outcomes" in args else ""
print("read", outcomes and len(Path(outcomes).read_text().splitlines()) - 1, "outcomes;", " ".join(args),
      flush=True)
if "--fail" in args:
    print("Traceback: it broke", flush=True)
    raise SystemExit(3)
if "--hang" in args:
    import time; time.sleep(60)
(models / "3.0.0").mkdir(parents=True)
promoted = "--refuse" not in args
print("promotion:", "promoted; passed" if promoted else "not promoted; refused: worse on lab downtime")
if promoted:
    (models / "ACTIVE").write_text("3.0.0\\n")
print(f"wrote {models / '3.0.0'}" + ("; ACTIVE -> 3.0.0" if promoted else "; ACTIVE unchanged"))
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A stand-in `training.train_cost` with the real one's command line and output lines."""
    (tmp_path / "repo" / "training").mkdir(parents=True)
    (tmp_path / "repo" / "training" / "__init__.py").write_text("")
    (tmp_path / "repo" / "training" / "train_cost.py").write_text(STAND_IN)
    return tmp_path / "repo"


@pytest.mark.parametrize(("arguments", "expected"), [
    ((), ("promoted", "3.0.0", "promoted; passed", 0)),
    (("--refuse",), ("not promoted", "3.0.0", "not promoted; refused: worse on lab downtime", 0)),
    (("--fail",), ("failed", "", "exit code 3: Traceback: it broke", 3)),
])
def test_the_job_runs_as_a_subprocess(repo: Path, tmp_path: Path, arguments: tuple[str, ...],
                                      expected: tuple[object, ...]) -> None:
    job = SubprocessTrainingJob(tmp_path / "models", tmp_path / "work", repo_dir=repo, arguments=arguments)
    result = job.run([outcome("a", Phase.SUCCEEDED, 1.0), outcome("b", Phase.ABORTED, 2.0)])
    reason = result.reason.split(" (see ")[0]
    assert (result.result, result.version, reason, result.exit_code) == expected
    assert result.outcomes == 2
    log = (tmp_path / "work" / "last-run.log").read_text()
    assert log.startswith(f"read 2 outcomes; --promote --models-dir {tmp_path / 'models' / 'cost'} --docs  "
                          f"--outcomes {tmp_path / 'work' / 'outcomes.csv'}")
    assert job.command(None)[:3] == [sys.executable, "-m", "training.train_cost"]


def test_a_job_beyond_its_time_or_stopped_is_killed(repo: Path, tmp_path: Path) -> None:
    job = SubprocessTrainingJob(tmp_path / "models", tmp_path / "work", repo_dir=repo, arguments=("--hang",),
                                timeout_s=0.5)
    result = job.run([])
    assert (result.result, result.exit_code) == ("failed", None)
    assert result.reason.startswith("killed after 0.5 s")
    assert "--outcomes" not in (tmp_path / "work" / "last-run.log").read_text()  # none to give

    job = SubprocessTrainingJob(tmp_path / "models", tmp_path / "work", repo_dir=repo, arguments=("--hang",))
    ended: list[RetrainResult] = []
    runner = threading.Thread(target=lambda: ended.append(job.run([])))
    runner.start()
    while not (tmp_path / "work" / "last-run.log").read_text():
        runner.join(0.05)
    job.stop()
    runner.join(30)
    assert (ended[0].result, ended[0].reason, ended[0].exit_code) == ("failed", "stopped with the advisor", None)
    assert job.run([]).reason == "stopped with the advisor"  # and none starts after


def test_the_settings_of_retraining() -> None:
    settings = load_settings(env={"ADVISOR_RETRAIN_INTERVAL_S": "86400", "ADVISOR_RETRAIN_ON_DRIFT": "true",
                                  "ADVISOR_RETRAIN_ARGUMENTS": "--snu-sample,0.1"})
    assert (settings.retrain_interval_s, settings.retrain_on_drift, settings.retrain_arguments,
            settings.retrain_drift_min_outcomes) == (86400.0, True, ("--snu-sample", "0.1"), 10)
    assert Settings().retrain_interval_s == 0 and not Settings().retrain_on_drift  # off unless asked
    for bad in ({"ADVISOR_RETRAIN_INTERVAL_S": "-1"}, {"ADVISOR_RETRAIN_TIMEOUT_S": "0"},
                {"ADVISOR_RETRAIN_DRIFT_MIN_OUTCOMES": "-2"}, {"ADVISOR_RETRAIN_ON_DRIFT": "sometimes"}):
        with pytest.raises(ConfigError, match="retrain_"):
            load_settings(env=bad)
