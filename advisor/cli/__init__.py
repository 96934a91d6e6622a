"""The `advisor` command (advisor.cli.main): the service, the demo, and the commands that talk to a running advisor."""

from advisor.cli.main import EXAMPLE, main
from advisor.cli.remote import push_example

__all__ = ["EXAMPLE", "main", "push_example"]
