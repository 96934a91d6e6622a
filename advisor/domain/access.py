"""Who may do what: roles, the calls each role may make, the identity of a caller, its tokens and the audit
trail of what it did.

Roles nest: each has the rights of the one before it. The table names every call of the API by its gRPC method
name (`Service/Method`); a call that is not in the table is refused to every role but admin, so a new call is
closed until someone decides who may make it.

The protocols at the end are what the API, the web page and the command line ask of the storage of tokens and of
the audit trail; advisor/app.py gives them the database's.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from advisor.domain.errors import SetupError


class Role(enum.IntEnum):
    READER = 1  # list, get, predict, watch
    SCHEDULER = 2  # + push inventory and samples, recommend, plan, place new VMs
    OPERATOR = 3  # + approve, reject, execute, run, retry, abort, cancel
    ADMIN = 4  # everything, automation levels too

    @property
    def label(self) -> str:
        return self.name.lower()

    @staticmethod
    def parse(text: str) -> Role:
        try:
            return Role[text.strip().upper()]
        except KeyError:
            raise ValueError(f"unknown role {text[:40]!r} (one of {', '.join(r.label for r in Role)})") from None


# The least role each call needs.
REQUIRED_ROLE: dict[str, Role] = {
    "InventoryService/ListHosts": Role.READER,
    "InventoryService/ListVms": Role.READER,
    "PredictionService/PredictMigrationCost": Role.READER,
    "RecommendationService/ListRecommendations": Role.READER,
    "RecommendationService/GetRecommendation": Role.READER,
    "RecommendationService/ListHostAssessments": Role.READER,
    "RecommendationService/ListMoves": Role.READER,
    "MigrationService/WatchMigration": Role.READER,
    "MigrationService/GetMigration": Role.READER,
    "MigrationService/ListMigrations": Role.READER,
    "AutomationService/GetAutomation": Role.READER,
    "InventoryService/PushInventory": Role.SCHEDULER,
    "TelemetryService/PushSamples": Role.SCHEDULER,
    "TelemetryService/StreamSamples": Role.SCHEDULER,
    "RecommendationService/RecommendTarget": Role.SCHEDULER,
    "RecommendationService/PlanCluster": Role.SCHEDULER,
    "RecommendationService/PlaceVm": Role.SCHEDULER,
    "RecommendationService/ApproveRecommendation": Role.OPERATOR,
    "RecommendationService/RejectRecommendation": Role.OPERATOR,
    "MigrationService/ExecuteMigration": Role.OPERATOR,
    "MigrationService/AbortMigration": Role.OPERATOR,
    "MigrationService/RunRecommendation": Role.OPERATOR,
    "RecommendationService/CancelRecommendation": Role.OPERATOR,
    "AutomationService/SetAutomation": Role.ADMIN,
}
# Calls that change state: each is written to the audit trail, whatever its outcome.
STATE_CHANGING: frozenset[str] = frozenset({
    "InventoryService/PushInventory", "TelemetryService/PushSamples", "TelemetryService/StreamSamples",
    "RecommendationService/RecommendTarget", "RecommendationService/PlanCluster",
    "RecommendationService/ApproveRecommendation", "RecommendationService/RejectRecommendation",
    "MigrationService/ExecuteMigration", "MigrationService/AbortMigration", "MigrationService/RunRecommendation",
    "RecommendationService/CancelRecommendation", "RecommendationService/PlaceVm", "AutomationService/SetAutomation",
})


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: its name (recorded as the actor of what it does), role, and how it proved it."""

    name: str
    role: Role
    via: str  # "token" or "certificate"


def may_call(role: Role, method: str) -> bool:
    """Whether `role` may call `method` ("Service/Method"); unknown methods are admin-only."""
    return role >= REQUIRED_ROLE.get(method, Role.ADMIN)


class TokenError(SetupError, ValueError):
    """A token cannot be created or revoked; the message says why."""


@dataclass(frozen=True)
class TokenInfo:
    """A bearer token as listed: never the token itself (only its hash is stored)."""

    name: str
    role: Role
    created_at_s: float
    revoked_at_s: float | None


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit trail: who did what, when, from where, and how it ended."""

    at_s: float
    actor: str  # the caller's name, or "anonymous"
    role: str
    peer: str  # the caller's address, e.g. ipv4:127.0.0.1:53124 as gRPC gives it
    call: str  # Service/Method, or Web/Login and Web/Logout
    target: str  # what the call was about (an id), when it names one
    outcome: str  # the status code's name: OK, PERMISSION_DENIED, ...
    detail: str = ""


class TokenCheck(Protocol):
    def authenticate(self, token: str) -> Caller | None:
        """The caller a token stands for; None for a malformed, unknown or revoked token."""


class Tokens(TokenCheck, Protocol):
    """The tokens, as `advisor tokens` and `advisor ui` manage them. Create and revoke raise TokenError."""

    def create(self, name: str, role: Role) -> str: ...

    def revoke(self, name: str) -> None: ...

    def list(self) -> list[TokenInfo]: ...


class AuditTrail(Protocol):
    def append(self, entry: AuditEntry) -> None: ...
