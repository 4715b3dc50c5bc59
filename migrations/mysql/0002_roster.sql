-- attendance-uplink central schema, version 2: the fleet roster of record.
-- Every change to a site's people gets the site's next revision (assigned under the
-- roster_sites row lock, so revisions commit in order); terminals ask for the changes
-- after the last revision they applied. A deletion erases the person's faces, name and
-- earlier changes and leaves a tombstone change; attendance rows stay.

CREATE TABLE IF NOT EXISTS roster_sites (
    site          VARCHAR(50)  PRIMARY KEY,
    revision      BIGINT       NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS roster_people (
    employee_id   VARCHAR(50)  PRIMARY KEY,
    site          VARCHAR(50)  NOT NULL,
    name          VARCHAR(100) NOT NULL,
    active        TINYINT(1)   NOT NULL DEFAULT 1,
    revision      BIGINT       NOT NULL COMMENT 'the site revision of the last change',
    created_at    DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at    DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    INDEX idx_roster_people_site (site, revision)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS roster_changes (
    site          VARCHAR(50)  NOT NULL,
    revision      BIGINT       NOT NULL,
    change_id     CHAR(36)     NOT NULL COMMENT 'UUIDv7 from where it was made: the idempotency key',
    employee_id   VARCHAR(50)  NOT NULL,
    op            VARCHAR(10)  NOT NULL COMMENT 'enrol | delete',
    name          VARCHAR(100) NULL,
    device_id     VARCHAR(50)  NULL COMMENT 'NULL: made centrally',
    ts            DATETIME(3)  NOT NULL,
    PRIMARY KEY (site, revision),
    UNIQUE KEY uq_roster_changes_change_id (change_id),
    INDEX idx_roster_changes_employee (employee_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS roster_faces (
    face_id       CHAR(36)     PRIMARY KEY,
    employee_id   VARCHAR(50)  NOT NULL,
    site          VARCHAR(50)  NOT NULL,
    revision      BIGINT       NOT NULL COMMENT 'the change that added it',
    embedder      VARCHAR(32)  NOT NULL,
    template      MEDIUMBLOB   NULL COMMENT '.npy',
    crop          MEDIUMBLOB   NULL COMMENT 'PNG, when the terminal keeps enrolment crops',
    quality       FLOAT        NOT NULL,
    device_id     VARCHAR(50)  NULL,
    INDEX idx_roster_faces_change (site, revision),
    INDEX idx_roster_faces_employee (employee_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
