"""Identifiers the advisor gives what it creates (recommendations, operations)."""

from __future__ import annotations

import uuid


def new_id() -> str:
    """A fresh random id, short enough to type: 12 hex digits (48 bits)."""
    return uuid.uuid4().hex[:12]
