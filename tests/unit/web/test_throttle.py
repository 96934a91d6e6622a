"""Failed logins per client: a few free, then a doubling wait; forgotten after a while or on success; audit rows
bounded per client and per hour; a bounded number of clients remembered."""

from __future__ import annotations

from advisor.web import throttle
from advisor.web.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_wait_doubles_after_the_free_failures_up_to_a_bound() -> None:
    clock = Clock()
    gate = LoginThrottle(clock)
    waits = []
    for _ in range(15):
        assert gate.wait_s("10.0.0.1") == 0.0
        waits.append(gate.failed("10.0.0.1").wait_s)
        assert gate.wait_s("10.0.0.1") == waits[-1]
        clock.now += waits[-1]
    assert waits[:throttle.FREE_FAILURES] == [0.0] * throttle.FREE_FAILURES
    assert waits[throttle.FREE_FAILURES:8] == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert max(waits) == throttle.MAX_WAIT_S == waits[-1]
    assert gate.wait_s("10.0.0.2") == 0.0  # per client


def test_a_client_is_forgotten_after_a_quiet_while_or_when_it_logs_in() -> None:
    clock = Clock()
    gate = LoginThrottle(clock)
    for _ in range(6):
        gate.failed("a")
        gate.failed("b")
    assert gate.wait_s("a") > 0 and gate.wait_s("b") > 0
    gate.succeeded("a")
    assert gate.wait_s("a") == 0.0 and gate.failed("a").failures == 1
    clock.now += throttle.FORGET_S
    assert gate.wait_s("b") == 0.0 and gate.failed("b").failures == 1


def test_audit_rows_are_bounded_per_client_and_per_hour() -> None:
    clock = Clock()
    gate = LoginThrottle(clock)
    audited = [gate.failed("a").audited for _ in range(20)]
    assert audited == [True] * throttle.AUDITED_FAILURES + [False] * (20 - throttle.AUDITED_FAILURES)
    clock.now = 3600.0 * 1000  # a new hour; many clients
    rows = sum(gate.failed(f"10.0.{i // 250}.{i % 250}").audited for i in range(1000))
    assert rows == throttle.AUDITED_PER_HOUR


def test_a_flood_of_addresses_keeps_memory_bounded() -> None:
    gate = LoginThrottle(Clock())
    for i in range(throttle.MAX_CLIENTS + 50):
        gate.failed(f"client-{i}")
    assert len(gate._clients) == throttle.MAX_CLIENTS
    assert gate.failed("client-0").failures == 1  # the oldest went first
