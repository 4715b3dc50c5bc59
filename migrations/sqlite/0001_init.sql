-- attendanced local schema, version 1.
-- Columns of the spec's MySQL tables keep their names and meaning.

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    employee_id   TEXT    NOT NULL UNIQUE,
    name          TEXT    NOT NULL,
    -- The spec's column: path of the user's first template (.npy), relative to the
    -- encoding directory.
    profile_image TEXT,
    -- Numeric part of an auto-generated EMPnnn id (NULL for ids chosen by an admin).
    seq           INTEGER UNIQUE,
    created_at    TEXT    NOT NULL
);

CREATE TABLE templates (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    employee_id   TEXT    NOT NULL REFERENCES users(employee_id) ON DELETE CASCADE,
    -- File names relative to the encoding / image directories.
    vector_path   TEXT    NOT NULL UNIQUE,
    crop_path     TEXT,
    embedder      TEXT    NOT NULL,
    quality_score REAL,
    device_id     TEXT,
    created_at    TEXT    NOT NULL
);
CREATE INDEX idx_templates_employee_id ON templates(employee_id);
CREATE INDEX idx_templates_embedder ON templates(embedder);

-- Every attempt at the door, recognised or not. History outlives users.
CREATE TABLE attendance (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      TEXT    NOT NULL UNIQUE,   -- UUIDv7
    employee_id   TEXT,                      -- NULL: nobody recognised
    type          TEXT    NOT NULL CHECK (type IN ('IN', 'OUT')),
    device_id     TEXT,
    distance      REAL,
    threshold     REAL,
    embedder      TEXT,
    reason        TEXT,                      -- NULL when recognised
    source        TEXT    NOT NULL CHECK (source IN ('camera', 'upload', 'manual')),
    ts_server     TEXT    NOT NULL,          -- RFC 3339, UTC
    ts_client     TEXT,                      -- as the client sent it
    image_ref     TEXT,
    published_at  TEXT                       -- broker's PUBACK time
);
CREATE INDEX idx_attendance_employee_id ON attendance(employee_id);
CREATE INDEX idx_attendance_ts_server ON attendance(ts_server);

-- Events waiting for (or already given to) the MQTT broker, in order.
CREATE TABLE outbox (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      TEXT    NOT NULL UNIQUE,
    payload       BLOB    NOT NULL,          -- CBOR, schema v1
    created_at    TEXT    NOT NULL,
    published_at  TEXT
);
CREATE INDEX idx_outbox_unpublished ON outbox(seq) WHERE published_at IS NULL;
