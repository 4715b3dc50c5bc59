-- attendance-uplink central schema, version 5: the door's clock. `clock` says whether
-- ts_server was taken on a synchronised clock: `unsynced` may be 1970 or days old (a Pi
-- booted without a battery clock, before NTP), `corrected` was unsynced and has been
-- recomputed by the door when its clock synchronised; NULL: the door did not say. A
-- time before 2025 is stored `unsynced` whatever the door says. Dashboards leave out or
-- mark `unsynced` rows.

ALTER TABLE attendance ADD COLUMN clock VARCHAR(10) NULL COMMENT 'synced | unsynced | corrected; NULL: the door did not say' AFTER ts_client_raw;
