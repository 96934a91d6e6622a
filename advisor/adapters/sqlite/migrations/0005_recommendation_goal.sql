-- depends: 0004_inventory_feed
-- Each recommendation's goal beside its body, so that a new proposal learns which open recommendations move its
-- VMs (their ids, goals and states) without reading their bodies: a plan's is megabytes.
ALTER TABLE recommendations ADD COLUMN goal TEXT NOT NULL DEFAULT '';
UPDATE recommendations SET goal = COALESCE(json_extract(body, '$.goal'), '');
