"""The leader's lease as one replica steps it (advisor.domain.lease), as a table: what its last claim found, and
what it then does."""

from __future__ import annotations

import pytest

from advisor.domain.lease import Act, Lease, Standing, step

TTL = 10.0
MINE, OTHERS = Lease("me", 4, 1e9), Lease("other", 5, 1e9)
FOLLOWING, LEADING = Standing(), Standing(term=4, renewed_at_s=100.0)

CASES = [
    # standing, found, began, now, expected standing, act
    ("a follower finds the lease its own: it leads", FOLLOWING, MINE, 103.0, 103.1, Standing(4, 103.0), Act.LEAD),
    ("a follower finds another's", FOLLOWING, OTHERS, 103.0, 103.1, FOLLOWING, Act.STAY),
    ("a follower's claim fails", FOLLOWING, None, 103.0, 103.1, FOLLOWING, Act.STAY),
    ("a leader renews from when its claim began", LEADING, MINE, 103.0, 104.5, Standing(4, 103.0), Act.STAY),
    ("a leader finds another's: it steps down", LEADING, OTHERS, 103.0, 103.1, FOLLOWING, Act.STEP_DOWN),
    ("a leader's lease lapsed and it took it again: a new term, not this life's", LEADING, Lease("me", 6, 1e9),
     103.0, 103.1, FOLLOWING, Act.STEP_DOWN),
    ("a leader's claim fails early in its TTL: it keeps leading", LEADING, None, 105.0, 105.1, LEADING, Act.STAY),
    ("a leader's claims fail until 0.8 of the TTL: it stops before its lease expires", LEADING, None, 107.9, 108.0,
     FOLLOWING, Act.STEP_DOWN),
]


@pytest.mark.parametrize(("standing", "found", "began", "now", "after", "act"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_a_replica_steps_its_lease(standing: Standing, found: Lease | None, began: float, now: float,
                                   after: Standing, act: Act) -> None:
    assert step(standing, found, "me", began, now, TTL) == (after, act)


def test_a_lease_without_time_is_refused() -> None:
    with pytest.raises(ValueError, match="TTL must be positive"):
        step(FOLLOWING, MINE, "me", 0.0, 0.0, 0.0)
