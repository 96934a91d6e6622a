"""PostgreSQL, for advisors that share one database (`database_url = "postgresql://..."`): the stores are
advisor.adapters.sql's; this package is the connection pool and the schema."""
