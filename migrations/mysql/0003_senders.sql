-- attendance-uplink central schema, version 3: who sent what. `terminal` is the door
-- that published an event (its topic, which the broker's ACL binds to the door's own
-- account), beside `device_id`, which is what the request named (a kiosk behind the
-- door). Dead letters name their sender, so one door's garbage is found and counted.

ALTER TABLE attendance ADD COLUMN terminal VARCHAR(50) NULL COMMENT 'the door that sent it (its MQTT topic)' AFTER site;
ALTER TABLE dead_letter ADD COLUMN site VARCHAR(50) NULL AFTER topic, ADD COLUMN device_id VARCHAR(50) NULL AFTER site, ADD INDEX idx_dead_letter_sender (site, device_id, received_at);
