"""The leader's lease, as one replica sees it: a pure step from what its last claim found to what it must do.

Replicas on one PostgreSQL elect one leader through a lease row (advisor.adapters.sql.lease): a claim renews the
holder's lease, or takes it once it has expired, and every new tenure gets a higher fencing term. Each replica
claims every few seconds and steps this state machine with what the claim returned: the lease it found (its own
or another's), or nothing when the database did not answer.

A leader that cannot renew stops acting before its lease can expire in the database: it steps down at
STEP_DOWN_FRACTION of the TTL after the start of its last successful claim, which leaves the rest of the TTL for
the replicas' clocks to disagree and for a claim's statement to reach the database later than it began. A leader
that steps down does not come back in the same life: the process stops and is started again as a follower
(Kubernetes' controllers do the same when their lease is lost), so no state of a past tenure survives into a new
one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# A leader that could not renew steps down at this part of the TTL after its last successful claim began.
STEP_DOWN_FRACTION = 0.8


@dataclass(frozen=True)
class Lease:
    """The lease as stored: who holds it, in which term, until when (seconds since the epoch)."""

    holder: str
    term: int
    expires_at_s: float


@dataclass(frozen=True)
class Standing:
    """This replica's view of itself: the term it leads in (None while it follows), and when (its monotonic
    clock) the last claim that renewed its lease began."""

    term: int | None = None
    renewed_at_s: float = 0.0

    @property
    def leading(self) -> bool:
        return self.term is not None


class Act(enum.Enum):
    STAY = "stay"  # nothing changes
    LEAD = "lead"  # elected: take over (reconcile, start the executor and the leader's tasks)
    STEP_DOWN = "step down"  # lost the lease, or could not renew it in time: stop acting at once


def step(standing: Standing, found: Lease | None, me: str, began_s: float, now_s: float,
         ttl_s: float) -> tuple[Standing, Act]:
    """What this replica (`me`) does after a claim that began at `began_s` (monotonic) found `found` (None: the
    claim failed), now `now_s`, with leases of `ttl_s` seconds."""
    if ttl_s <= 0:
        raise ValueError(f"the lease's TTL must be positive (got {ttl_s})")
    mine = found is not None and found.holder == me
    if not standing.leading:
        if mine and found is not None:
            return Standing(found.term, began_s), Act.LEAD
        return standing, Act.STAY
    if mine and found is not None:
        if found.term != standing.term:  # it lapsed and was taken again: a new tenure this life does not mix with
            return Standing(), Act.STEP_DOWN
        return Standing(standing.term, began_s), Act.STAY
    if found is not None:  # another replica holds it
        return Standing(), Act.STEP_DOWN
    if now_s - standing.renewed_at_s >= STEP_DOWN_FRACTION * ttl_s:
        return Standing(), Act.STEP_DOWN
    return standing, Act.STAY  # a claim failed, the lease still holds: try again at the next tick
