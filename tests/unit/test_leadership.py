"""The leadership loop (advisor.leadership) on a lease of its own: it takes over when its first claim elects it,
steps down (stopping what a leader runs) when its claims fail past the part of the TTL it keeps in hand, and lets
its lease go when it stops; SQLite's only process leads at once."""

from __future__ import annotations

import itertools
import threading

from advisor.domain.lease import Lease
from advisor.leadership import Leadership


class FlakyLease:
    def __init__(self) -> None:
        self.down = False
        self.released: list[tuple[str, int]] = []

    def claim(self, holder: str, now_s: float, ttl_s: float) -> Lease:
        if self.down:
            raise ConnectionError("the database is unreachable")
        return Lease(holder, 7, now_s + ttl_s)

    def release(self, holder: str, term: int) -> bool:
        self.released.append((holder, term))
        return True


def test_a_replica_leads_then_steps_down_when_it_cannot_renew() -> None:
    lease, seconds = FlakyLease(), itertools.count()
    leadership = Leadership(lease, 0.25, replica="r1", monotonic=lambda: float(next(seconds)))
    events: list[str] = []
    leadership.start(lambda: events.append("elected"), lambda: events.append("deposed"))
    assert events == ["elected"] and leadership.acting() and leadership.term == 7 and leadership.leader() == "r1"
    lease.down = True  # each claim now fails, and a second passes between two looks at the clock
    assert leadership.deposed.wait(10)
    assert events == ["elected", "deposed"] and not leadership.acting()
    assert leadership.term == 7  # what its executor still writes carries the term it led in, and is refused
    leadership.stop()
    assert lease.released == []  # deposed: nothing of its own to release


class HangingLease(FlakyLease):
    """Its first claim answers; the next ones hang until `answer` is set, as over a cut connection."""

    def __init__(self) -> None:
        super().__init__()
        self.answer, self.claims = threading.Event(), 0

    def claim(self, holder: str, now_s: float, ttl_s: float) -> Lease:
        self.claims += 1
        if self.claims > 1:
            self.answer.wait()
        return super().claim(holder, now_s, ttl_s)


def test_a_leader_whose_claim_hangs_steps_down_on_time_without_it() -> None:
    lease = HangingLease()
    leadership = Leadership(lease, 0.5, replica="r1")
    events: list[str] = []
    leadership.start(lambda: events.append("elected"), lambda: events.append("deposed"))
    assert leadership.deposed.wait(10)
    assert events == ["elected", "deposed"] and not lease.answer.is_set()  # the claim still hangs
    lease.answer.set()  # it comes back, finding the lease its own: this life's leadership is over all the same
    leadership.stop()
    assert events == ["elected", "deposed"] and not leadership.acting()


def test_a_leader_that_stops_releases_its_lease() -> None:
    lease = FlakyLease()
    leadership = Leadership(lease, 10.0, replica="r1")
    leadership.start(lambda: None, lambda: None)
    leadership.stop()
    assert lease.released == [("r1", 7)] and not leadership.deposed.is_set()


def test_a_takeover_names_the_replica_and_its_term_on_the_timelines_it_reconciles() -> None:
    elected: list[str] = []
    leader = Leadership(FlakyLease(), 10.0, replica="r1")
    leader.start(lambda: elected.append(leader.takeover()), lambda: None)
    only = Leadership(None, 10.0, replica="only")
    only.start(lambda: elected.append(only.takeover()), lambda: None)
    assert elected == ["replica r1 took over as leader (term 7)", "advisor restarted"]
    leader.stop()
    only.stop()


def test_the_only_process_leads_at_once_without_a_term() -> None:
    leadership = Leadership(None, 10.0, replica="only")
    elected: list[bool] = []
    leadership.start(lambda: elected.append(True), lambda: None)
    assert elected == [True] and leadership.acting() and leadership.term is None
    leadership.stop()
