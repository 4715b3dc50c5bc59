-- Version 3: the fleet roster. Enrolments and deletions made here travel to the centre
-- through the outbox (kind 'roster', payload a CBOR roster change that names its faces
-- but carries no face data: that is read from the sealed files when it is sent); the
-- site's roster comes back as pages applied up to `roster_state.revision`.

ALTER TABLE outbox ADD COLUMN kind TEXT NOT NULL DEFAULT 'event' CHECK (kind IN ('event', 'roster'));
ALTER TABLE templates ADD COLUMN face_id TEXT;
CREATE INDEX idx_templates_face_id ON templates(face_id);

CREATE TABLE roster_state (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    -- The last revision of the site's roster applied here.
    revision  INTEGER NOT NULL,
    -- The latest revision the centre announced.
    head      INTEGER NOT NULL
);
INSERT INTO roster_state (id, revision, head) VALUES (1, 0, 0);
