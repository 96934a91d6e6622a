"""Who may do what: roles, the calls each role may make, and the identity of a caller.

Roles nest: each has the rights of the one before it. The table names every call of the API by its gRPC method
name (`Service/Method`); a call that is not in the table is refused to every role but admin, so a new call is
closed until someone decides who may make it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


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
