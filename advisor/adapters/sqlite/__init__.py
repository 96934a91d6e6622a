"""The embedded default: the advisor's state in one SQLite file (WAL) in the data directory. The stores are
advisor.adapters.sql's; this package is the file, its connection and its schema."""
