-- attendance-uplink central schema, version 1: the spec's tables plus what exactly-once
-- delivery needs (a UNIQUE event_id) and the event fields terminals publish.

CREATE TABLE IF NOT EXISTS users (
    id            INT PRIMARY KEY AUTO_INCREMENT,
    employee_id   VARCHAR(50)  NOT NULL UNIQUE,
    name          VARCHAR(100) NOT NULL,
    profile_image VARCHAR(255) NULL COMMENT 'template file of the first enrolment (terminal side)',
    created_at    DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
    INDEX idx_employee_id (employee_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS attendance (
    id            BIGINT PRIMARY KEY AUTO_INCREMENT,
    event_id      CHAR(36)     NOT NULL COMMENT 'UUIDv7 from the terminal: the idempotency key',
    employee_id   VARCHAR(50)  NULL COMMENT 'NULL: attempt with nobody recognised',
    type          VARCHAR(10)  NOT NULL,
    device_id     VARCHAR(50)  NULL,
    distance      FLOAT        NULL COMMENT 'L2 distance to the matched / nearest template',
    ts_server     DATETIME(3)  NOT NULL COMMENT 'terminal time, UTC',
    ts_client     DATETIME(3)  NULL COMMENT 'client time (UTC when the client gave an offset)',
    image_ref     VARCHAR(255) NULL,
    site          VARCHAR(50)  NULL,
    source        VARCHAR(10)  NULL COMMENT 'camera | upload | manual',
    threshold     FLOAT        NULL,
    embedder      VARCHAR(32)  NULL,
    reason        VARCHAR(32)  NULL COMMENT 'NULL on success, else the reason code',
    detail        VARCHAR(32)  NULL COMMENT 'bad_quality sub-reason',
    ts_client_raw VARCHAR(64)  NULL COMMENT 'ts_client exactly as sent',
    received_at   DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    UNIQUE KEY uq_attendance_event_id (event_id),
    INDEX idx_attendance_employee_id (employee_id),
    INDEX idx_attendance_ts_server (ts_server)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS dead_letter (
    id            BIGINT PRIMARY KEY AUTO_INCREMENT,
    topic         VARCHAR(255) NOT NULL,
    payload       LONGBLOB     NOT NULL,
    error         TEXT         NOT NULL,
    received_at   DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
