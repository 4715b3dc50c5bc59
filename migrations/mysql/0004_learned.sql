-- attendance-uplink central schema, version 4: faces learned at the door. A door keeps a
-- confident recognition as one more template of its person (at most a few, the most
-- redundant replaced); such a face is marked so a change may retire it, and the change
-- that retires learned faces names them, so doors that hold them drop them too.
-- Enrolment photos are never retired this way: only an erasure removes them.

ALTER TABLE roster_faces ADD COLUMN learned TINYINT(1) NOT NULL DEFAULT 0 COMMENT '1: learned at the door, retirable';
ALTER TABLE roster_changes ADD COLUMN retire TEXT NULL COMMENT 'learned face ids this change retired, comma-separated';
