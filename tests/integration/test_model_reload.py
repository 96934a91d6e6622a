"""A promoted model is served without a restart and without a failed request, and so is an active artifact
changed in place; one that cannot be served is refused and the current one stays."""

from __future__ import annotations

import json
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from advisor.api.client import AdvisorClient, ClientError
from advisor.api.v1 import advisor_pb2 as pb
from advisor.app import App
from advisor.cli import EXAMPLE, push_example
from tests.support import REPO

pytestmark = pytest.mark.integration


def _wait_for(check: Callable[[], bool], timeout_s: float = 20) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "never happened"
        time.sleep(0.2)


def test_a_promoted_model_is_served_without_a_restart(make_app: Callable[..., App],
                                                      client_for: Callable[..., AdvisorClient],
                                                      tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(REPO / "models", models)
    active = (models / "cost" / "ACTIVE").read_text().strip()
    app = make_app(models_dir=models, models_reload_interval_s=0.2)
    client = client_for(app)
    push_example(client, json.loads(EXAMPLE.read_text()), time.time())
    ask = pb.PredictMigrationCostRequest(vm_id="db-1")

    def version() -> str:
        return str(client.predict(ask).costs[0].model.version)

    def served() -> float:
        return app.metrics.registry.get_sample_value("advisor_model_reloads_total",
                                                     {"kind": "cost", "outcome": "served"}) or 0

    assert version() == active
    failures: list[str] = []
    stop = threading.Event()

    def keep_asking() -> None:
        while not stop.is_set():
            try:
                client.predict(ask)
            except ClientError as error:
                failures.append(str(error))

    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        # A new version (the same model under another name, as a training job writes it), then activated.
        shutil.copytree(models / "cost" / active, models / "cost" / "9.0.0")
        card = json.loads((models / "cost" / "9.0.0" / "card.json").read_text())
        (models / "cost" / "9.0.0" / "card.json").write_text(json.dumps({**card, "version": "9.0.0"}))
        (models / "cost" / "ACTIVE").write_text("9.0.0\n")
        _wait_for(lambda: version() == "9.0.0")
        # The active version's files changed in place (behind the registry, which never rewrites a version): the
        # pointer is the same, the artifact is not, and it is loaded again.
        (models / "cost" / "9.0.0" / "card.json").write_text(json.dumps({**card, "version": "9.0.0",
                                                                          "created_by": "copied over by hand"}))
        _wait_for(lambda: served() == 2)
        # A broken version activated: refused, the last good one stays.
        shutil.copytree(models / "cost" / "9.0.0", models / "cost" / "9.0.1")
        (models / "cost" / "9.0.1" / "total_time_ms.txt").write_text("not a model\n")
        (models / "cost" / "ACTIVE").write_text("9.0.1\n")
        _wait_for(lambda: (app.metrics.registry.get_sample_value(
            "advisor_model_reloads_total", {"kind": "cost", "outcome": "refused"}) or 0) >= 1)
        assert version() == "9.0.0"
    finally:
        stop.set()
        asker.join(10)
    assert failures == []
    assert served() == 2
