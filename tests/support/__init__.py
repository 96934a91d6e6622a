"""What tests share beyond fixtures: the repository's root, and small builders of values."""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from advisor.app import App, build_app
from advisor.config import Settings
from advisor.execution.hypervisor import Hypervisor

REPO = Path(__file__).resolve().parents[2]


def local_settings(data_dir: Path, **settings: object) -> Settings:
    """Settings of an advisor used in-process by a test: ephemeral port, no metrics endpoint, no collectors."""
    defaults: dict[str, object] = {"listen": "127.0.0.1:0", "metrics_listen": "", "grace_s": 1.0,
                                   "dirty_rate_interval_s": 0.0, "data_dir": data_dir,
                                   # the fake hypervisor's hosts, besides what production allows
                                   "hypervisor_uri_patterns": (*Settings().hypervisor_uri_patterns, "fake://*")}
    return Settings(**{**defaults, **settings})  # type: ignore[arg-type]


@contextmanager
def local_advisor(data_dir: Path, connect: Callable[[str], Hypervisor] | None = None, *,
                  clock: Callable[[], float] = time.time, **settings: object) -> Iterator[App]:
    """The advisor wired as `advisor serve` wires it, used through its use cases without a server; it leads (on
    PostgreSQL, once it holds the lease), its executor runs (on `connect`, e.g. a FakeWorld's), its periodic tasks
    do not; it is stopped at the end."""
    app = build_app(local_settings(data_dir, **settings), clock=clock, **({"connect": connect} if connect else {}))
    app.lead(tasks=False)
    try:
        yield app
    finally:
        app.stop()
