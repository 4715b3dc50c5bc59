-- Version 6: the door's clock (`attendance_core::clock`). `clock` says whether ts_server
-- was taken on a synchronised clock (NULL: before this version); boot_id and
-- since_boot_ms place the attempt within its boot, so a repeat is told by time since boot
-- across a clock step, and an attempt taken before the sync is corrected when it comes.

ALTER TABLE attendance ADD COLUMN clock TEXT
    CHECK (clock IN ('synced', 'unsynced', 'corrected'));
ALTER TABLE attendance ADD COLUMN boot_id TEXT;
ALTER TABLE attendance ADD COLUMN since_boot_ms INTEGER;
CREATE INDEX idx_attendance_unsynced ON attendance(boot_id) WHERE clock = 'unsynced';
