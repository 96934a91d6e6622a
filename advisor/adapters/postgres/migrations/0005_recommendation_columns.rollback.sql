ALTER TABLE recommendations DROP COLUMN priority;
ALTER TABLE recommendations DROP COLUMN goal;
