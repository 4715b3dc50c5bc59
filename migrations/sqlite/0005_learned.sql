-- Version 5: templates learned at the door (`attendance_face::learn`): a confident
-- recognition kept as one more template of its person, at most a few per person, the
-- most redundant replaced. Marked so they are bounded, replaced and erased apart from
-- the enrolment photos, which learning never touches.

ALTER TABLE templates ADD COLUMN learned INTEGER NOT NULL DEFAULT 0;
