-- depends: 0002_leader_lease
-- Samples pushed to one replica, for the others (advisor.adapters.sql.feed): a batch a row, numbered in the order
-- they were written, kept for a few minutes. SQLite has one process per database, which never reads it back.
CREATE TABLE sample_feed (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    origin TEXT NOT NULL,
    written_at_s REAL NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX sample_feed_written_at ON sample_feed (written_at_s);
