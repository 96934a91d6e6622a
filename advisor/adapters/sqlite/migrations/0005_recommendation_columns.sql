-- depends: 0004_inventory_feed
-- Each recommendation's goal and priority level beside its body, both fixed when it is made, so that a new
-- proposal learns which open recommendations move its VMs (their ids, goals and states) and the review backlog is
-- counted without reading their bodies: a plan's is megabytes.
ALTER TABLE recommendations ADD COLUMN goal TEXT NOT NULL DEFAULT '';
ALTER TABLE recommendations ADD COLUMN priority INTEGER NOT NULL DEFAULT 3;
UPDATE recommendations SET goal = COALESCE(json_extract(body, '$.goal'), ''),
                           priority = COALESCE(json_extract(body, '$.priority.level'), 3);
