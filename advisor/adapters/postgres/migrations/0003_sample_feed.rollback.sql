DROP TABLE sample_feed;
