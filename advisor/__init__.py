"""Live-migration advisor: predict what moving a VM costs, then choose what to move, where and how."""

__version__ = "0.1.0"
