"""The advisor's durable state (inventory, recommendations, migrations, tokens, audit, samples, definitions) in SQL
that SQLite and PostgreSQL both accept, written once. What differs between the two (connections, schema, how a
change is seen) is in advisor.adapters.sqlite and advisor.adapters.postgres, each a `Database` (database.py)."""
