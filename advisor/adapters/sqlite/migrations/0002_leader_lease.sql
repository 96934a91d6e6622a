-- depends: 0001_schema
-- The leader's lease (advisor.adapters.sql.lease): one row, whose term rises with every new tenure; the writes
-- of an execution check it (a write with a stale term is refused).
CREATE TABLE leader_lease (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    term INTEGER NOT NULL,
    expires_at_s REAL NOT NULL
);
INSERT INTO leader_lease (name, holder, term, expires_at_s) VALUES ('leader', '', 0, 0);
