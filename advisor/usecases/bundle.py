"""All use cases together, as the API servicers receive them from advisor/app.py."""

from __future__ import annotations

from dataclasses import dataclass

from advisor.usecases.advice import Advice
from advisor.usecases.automation import Automation
from advisor.usecases.cluster_plans import Planning
from advisor.usecases.cluster_view import ClusterView
from advisor.usecases.ingestion import Ingestion
from advisor.usecases.migrations import Migrations
from advisor.usecases.queries import Queries
from advisor.usecases.review import Review


@dataclass(frozen=True)
class UseCases:
    ingestion: Ingestion
    queries: Queries
    advice: Advice
    planning: Planning
    review: Review
    migrations: Migrations
    automation: Automation
    cluster: ClusterView  # the page's cluster view
