"""Durable state: inventory and recommendations. SQLite in the data directory by default."""
