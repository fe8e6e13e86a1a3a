-- procmem PostgreSQL schema, version 7: calibrations of search confidence.
-- Key and text are UTF-8 bytes: they come back exactly, whatever they hold.
CREATE TABLE calibrations (
    key         bytea PRIMARY KEY,
    created_at  timestamptz NOT NULL,
    text        bytea NOT NULL
);
