"""The executor decides each migration's transport by the setting migration_tls and the hosts' TLS as they are when
it starts: encrypted where both offer it, plain (and said so) under `preferred`, refused under `required`."""

from __future__ import annotations

from dataclasses import replace

import pytest

from advisor.adapters.fake_hypervisor import FakeWorld
from advisor.domain.migration import Phase
from advisor.domain.model import MigrationParameters
from advisor.domain.transport import TlsMode
from advisor.execution.background import Launch
from advisor.execution.executor import Executor, HostEndpoint
from advisor.execution.hypervisor import Hypervisor, MigrationTarget
from tests.support.doubles import MemoryMigrationStore, RecordingObserver
from tests.unit.execution.test_executor import FakeClock, move, wait_final, world_of


def executor(clock: FakeClock, world: FakeWorld, mode: TlsMode, with_tls: set[str],
             asked: list[MigrationParameters]) -> Executor:
    def endpoint(host_id: str) -> HostEndpoint:
        uri = f"fake://{host_id}"
        return HostEndpoint(lambda: world.connect(uri), MigrationTarget(uri, tls=host_id in with_tls))

    def launch(source: Hypervisor, guest: str, target: MigrationTarget, parameters: MigrationParameters):  # type: ignore[no-untyped-def]
        asked.append(parameters)
        return world.launch(source, guest, target, parameters)

    started: Launch = launch
    e = Executor(MemoryMigrationStore(), endpoint, RecordingObserver(), clock=clock, monotonic=clock,
                 background=clock, launch=started, poll_interval_s=0.01, tls=mode)
    e.start()
    return e


@pytest.mark.parametrize(("mode", "with_tls", "planned", "phase", "tls", "words"), [
    (TlsMode.REQUIRED, {"a", "b"}, True, Phase.SUCCEEDED, True, "transport: TLS, both hosts offer it"),
    (TlsMode.REQUIRED, {"a"}, True, Phase.FAILED, None, "cannot start: refused: b offers no TLS for migration "
                                                        "(setting migration_tls = required)"),
    (TlsMode.REQUIRED, {"b"}, False, Phase.FAILED, None, "refused: a offers no TLS"),
    # the target lost its certificates since the move was planned encrypted: plain, and said so
    (TlsMode.PREFERRED, {"a"}, True, Phase.SUCCEEDED, False, "plain TCP, unencrypted: b offers no TLS"),
    (TlsMode.PREFERRED, {"a", "b"}, False, Phase.SUCCEEDED, True, "transport: TLS"),
    (TlsMode.OFF, {"a", "b"}, True, Phase.SUCCEEDED, False, "plain TCP (setting migration_tls = off)"),
])
def test_the_transport_is_decided_when_the_migration_starts(mode: TlsMode, with_tls: set[str], planned: bool,
                                                            phase: Phase, tls: bool | None, words: str) -> None:
    clock = FakeClock()
    world = world_of(clock, {"vm1": "a"})
    world.release.set()
    asked: list[MigrationParameters] = []
    e = executor(clock, world, mode, with_tls, asked)
    planned_move = move("vm1", "a", "b")
    planned_move = replace(planned_move, parameters=replace(planned_move.parameters, tls=planned))
    record = wait_final(clock, e, e.submit("rec-1", planned_move, actor="x").operation_id)
    assert record.phase is phase
    assert any(words in entry.message for entry in record.timeline), record.timeline
    if tls is None:  # refused: the hypervisor was never asked, the guest stays where it was
        assert asked == [] and world.guests["vm1"].host == "a"
    else:
        assert [p.tls for p in asked] == [tls] and record.parameters.tls is tls
