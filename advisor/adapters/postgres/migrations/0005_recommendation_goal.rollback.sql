ALTER TABLE recommendations DROP COLUMN goal;
