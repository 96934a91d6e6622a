"""Why a move failed, in classes an operator can act on, derived from what the hypervisor adapter made of its
error (a `Fault`) and from who asked the job to stop.

The hypervisor's own words may carry what a reader must not see (addresses, paths, a file's first line from a
crafted URI), so they stay in the log; a failure class and its sentence are the advisor's own words and safe to
show anyone who may read the migration.
"""

from __future__ import annotations

import enum


class Fault(enum.StrEnum):
    """What went wrong in one hypervisor call, as the adapter reads its error (code, domain and words)."""

    UNRESOLVABLE = "unresolvable"  # a host's name did not resolve
    UNREACHABLE = "unreachable"  # nothing answered at a host's address (refused, no route, timed out)
    AUTH_REFUSED = "auth_refused"  # the daemon refused the credentials (or its access control the call)
    CONNECTION_LOST = "connection_lost"  # an open connection broke: the daemon at its far end went away
    REFUSED = "refused"  # the hypervisor (QEMU or libvirt) refused the operation in the guest's present state
    CANCELLED = "cancelled"  # the job was cancelled (an abort: ours, or someone's with virsh)
    NO_GUEST = "no_guest"  # the guest is not defined on the host asked
    OTHER = "other"  # anything else: only the log says

    @property
    def words(self) -> str:
        return _FAULT_WORDS[self]


_FAULT_WORDS = {
    Fault.UNRESOLVABLE: "a host's name does not resolve",
    Fault.UNREACHABLE: "a host cannot be reached",
    Fault.AUTH_REFUSED: "the credentials were refused",
    Fault.CONNECTION_LOST: "the connection to a hypervisor daemon broke",
    Fault.REFUSED: "the hypervisor (QEMU) refused it",
    Fault.CANCELLED: "the job was cancelled",
    Fault.NO_GUEST: "the guest is not on the host asked",
    Fault.OTHER: "the hypervisor reported an error",
}


class Side(enum.StrEnum):
    SOURCE = "source"
    TARGET = "target"

    @property
    def other(self) -> Side:
        return Side.TARGET if self is Side.SOURCE else Side.SOURCE


class Failure(enum.StrEnum):
    """Why a move failed or was aborted, as shown to operators (the API's FailureClass)."""

    SOURCE_UNRESOLVABLE = "source_unresolvable"
    TARGET_UNRESOLVABLE = "target_unresolvable"
    SOURCE_UNREACHABLE = "source_unreachable"
    TARGET_UNREACHABLE = "target_unreachable"
    SOURCE_AUTH_REFUSED = "source_auth_refused"
    TARGET_AUTH_REFUSED = "target_auth_refused"
    SOURCE_DAEMON_GONE = "source_daemon_gone"
    TARGET_DAEMON_GONE = "target_daemon_gone"
    QEMU_REFUSED = "qemu_refused"
    ABORTED_BY_MONITOR = "aborted_by_monitor"
    ABORTED_BY_PERSON = "aborted_by_person"
    DEADLINE = "deadline"
    GUEST_NOT_FOUND = "guest_not_found"
    GUEST_NOT_ANSWERING = "guest_not_answering"
    REFUSED_BY_ADVISOR = "refused_by_advisor"
    NO_DEFINITION = "no_definition"
    NOT_COMPLETED = "not_completed"
    HYPERVISOR_ERROR = "hypervisor_error"

    def words(self, source_host_id: str, target_host_id: str) -> str:
        """The class in a sentence naming the host it concerns, e.g. "target hv2's daemon went away"."""
        host = {"source": f"source {source_host_id}", "target": f"target {target_host_id}"}
        side = self.value.split("_", 1)[0]
        return _WORDS[self].format(host=host.get(side, ""))


_WORDS = {
    Failure.SOURCE_UNRESOLVABLE: "{host}'s name does not resolve",
    Failure.TARGET_UNRESOLVABLE: "{host}'s name does not resolve",
    Failure.SOURCE_UNREACHABLE: "{host} cannot be reached",
    Failure.TARGET_UNREACHABLE: "{host} cannot be reached",
    Failure.SOURCE_AUTH_REFUSED: "{host} refused the credentials",
    Failure.TARGET_AUTH_REFUSED: "{host} refused the credentials",
    Failure.SOURCE_DAEMON_GONE: "{host}'s hypervisor daemon went away",
    Failure.TARGET_DAEMON_GONE: "{host}'s hypervisor daemon went away",
    Failure.QEMU_REFUSED: "the hypervisor (QEMU) refused the operation",
    Failure.ABORTED_BY_MONITOR: "aborted by the monitor",
    Failure.ABORTED_BY_PERSON: "aborted by a person",
    Failure.DEADLINE: "aborted at its deadline",
    Failure.GUEST_NOT_FOUND: "the guest is not on the host asked",
    Failure.GUEST_NOT_ANSWERING: "the guest does not answer on its new host",
    Failure.REFUSED_BY_ADVISOR: "refused by the advisor's own rules",
    Failure.NO_DEFINITION: "the advisor has no definition of the guest to restart it from",
    Failure.NOT_COMPLETED: "the migration did not complete while the advisor was away",
    Failure.HYPERVISOR_ERROR: "the hypervisor reported an error",
}

_BY_SIDE = {
    (Fault.UNRESOLVABLE, Side.SOURCE): Failure.SOURCE_UNRESOLVABLE,
    (Fault.UNRESOLVABLE, Side.TARGET): Failure.TARGET_UNRESOLVABLE,
    (Fault.UNREACHABLE, Side.SOURCE): Failure.SOURCE_UNREACHABLE,
    (Fault.UNREACHABLE, Side.TARGET): Failure.TARGET_UNREACHABLE,
    (Fault.AUTH_REFUSED, Side.SOURCE): Failure.SOURCE_AUTH_REFUSED,
    (Fault.AUTH_REFUSED, Side.TARGET): Failure.TARGET_AUTH_REFUSED,
    (Fault.CONNECTION_LOST, Side.SOURCE): Failure.SOURCE_DAEMON_GONE,
    (Fault.CONNECTION_LOST, Side.TARGET): Failure.TARGET_DAEMON_GONE,
}
_EITHER_SIDE = {
    Fault.REFUSED: Failure.QEMU_REFUSED,
    Fault.NO_GUEST: Failure.GUEST_NOT_FOUND,
    # A cancelled job the advisor did not ask for: someone aborted it on the host.
    Fault.CANCELLED: Failure.ABORTED_BY_PERSON,
    Fault.OTHER: Failure.HYPERVISOR_ERROR,
}


def failure_of(fault: Fault, called: Side, *, peer: bool = False) -> Failure:
    """The class of a failed call to the `called` host's hypervisor. `peer` says the fault lay between that host
    and the other one (in a peer-to-peer migration the source's daemon talks to the target's), not between the
    advisor and the host called: a lost connection there means the other host's daemon went away."""
    side = called.other if peer else called
    return _BY_SIDE.get((fault, side)) or _EITHER_SIDE[fault]
