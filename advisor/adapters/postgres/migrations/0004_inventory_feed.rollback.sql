DROP TABLE inventory_feed;
