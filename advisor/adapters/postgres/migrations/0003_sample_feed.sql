-- depends: 0002_leader_lease
-- Samples pushed to one replica, for the others (advisor.adapters.sql.feed): a batch a row, numbered in the order
-- they were written, kept for a few minutes.
CREATE TABLE sample_feed (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    origin TEXT NOT NULL,
    written_at_s DOUBLE PRECISION NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX sample_feed_written_at ON sample_feed (written_at_s);
