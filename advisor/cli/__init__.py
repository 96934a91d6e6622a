"""The `advisor` command (advisor.cli.main): the service, the demo, and the commands that talk to a running advisor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from advisor.cli.main import EXAMPLE, main

if TYPE_CHECKING:
    from advisor.cli.remote import push_example

__all__ = ["EXAMPLE", "main", "push_example"]


def __getattr__(name: str) -> Any:
    """`push_example` (with gRPC behind it) imported when asked for, not by the `advisor` script's start."""
    if name == "push_example":
        from advisor.cli.remote import push_example

        return push_example
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
