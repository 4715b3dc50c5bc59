-- Version 4: roster entries this terminal refused to apply (a template or crop that is
-- not what its embedder makes, a field no store can hold, another site's change). The
-- page's revision still moves past them, so a bad entry is skipped once, not fetched
-- and refused forever; /health counts them and names the last.

CREATE TABLE roster_refused (
    revision     INTEGER PRIMARY KEY,
    employee_id  TEXT NOT NULL,
    why          TEXT NOT NULL,
    at           TEXT NOT NULL
);
