-- depends: 0003_sample_feed
-- Which hosts and VMs a replica changed (advisor.adapters.sql.feed), for the others to read them again from the
-- inventory's tables: a change a row, numbered in the order they were written, kept for a few minutes.
CREATE TABLE inventory_feed (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    origin TEXT NOT NULL,
    written_at_s DOUBLE PRECISION NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX inventory_feed_written_at ON inventory_feed (written_at_s);
