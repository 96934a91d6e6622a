"""The advisor's error hierarchy: every error it answers a caller with is one of these classes. Each class
means one gRPC status (the table is advisor.api.errors); anything else a call raises is an internal error."""

from __future__ import annotations


class AdvisorError(Exception):
    """Base of every error the advisor raises on purpose."""


class SetupError(Exception):
    """An unusable setup, never an answer to a caller: settings, the data directory, the database, a token's name.
    The command line says it in one line with exit code 2. Here, in a module that imports nothing, so that the
    command line can catch it without loading what the command did not need."""


class ConfigError(SetupError, ValueError):
    """A setting is unknown or has a value of the wrong kind; the message names it and where it came from."""


class InvalidArgument(AdvisorError):
    """A request field is malformed, out of range or inconsistent. `field` is its path, e.g. `hosts[3].memory_mib`."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem

    def within(self, prefix: str, note: str) -> InvalidArgument:
        """The same error seen from an enclosing message, e.g. the n-th message of a stream."""
        return InvalidArgument(f"{prefix}.{self.field}", f"{self.problem} ({note})")


class NotFound(AdvisorError):
    """A referenced entity does not exist."""

    def __init__(self, field: str, kind: str, ident: str, note: str = "") -> None:
        # An id from outside is quoted short: a client must not make us echo megabytes.
        shown = repr(ident[:64]) + (f" ... ({len(ident)} characters)" if len(ident) > 64 else "")
        super().__init__(f"{field}: unknown {kind} {shown}" + (f" ({note})" if note else ""))
        self.field = field
        self.kind = kind
        self.ident = ident

    def within(self, prefix: str, note: str) -> NotFound:
        return NotFound(f"{prefix}.{self.field}", self.kind, self.ident, note)


class FailedPrecondition(AdvisorError):
    """The request is well formed but the state forbids it (e.g. approving a rejected recommendation)."""


class Unavailable(AdvisorError):
    """What the answer needs cannot be had now, and the same request may succeed later: a system the advisor
    reads (Prometheus) is unreachable or failing, or the work is busy."""


class DeadlineExceeded(AdvisorError):
    """The call ran out of time, for example a stream whose client stayed silent."""
