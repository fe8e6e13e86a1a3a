-- procmem PostgreSQL schema, version 6: saved search indexes.
CREATE TABLE index_snapshots (
    key         text PRIMARY KEY,
    revision    bigint NOT NULL,
    created_at  timestamptz NOT NULL,
    data        bytea NOT NULL
);
