-- procmem SQLite schema, version 1.
-- Full records are stored as JSON (model_dump_json(by_alias=True)); the other
-- columns exist only for lookups and ordering. Timestamps in *_at columns are
-- fixed-width UTC ISO 8601 text ("YYYY-MM-DDTHH:MM:SS.ffffff") so that text
-- order is time order.

CREATE TABLE traces (
    id          TEXT PRIMARY KEY,
    json        TEXT NOT NULL,
    task        TEXT NOT NULL,
    seq         INTEGER NOT NULL UNIQUE,   -- insertion order
    created_at  TEXT NOT NULL
);

CREATE TABLE procedures (
    name        TEXT NOT NULL,
    version     INTEGER NOT NULL CHECK (version >= 1),
    status      TEXT NOT NULL CHECK (status IN ('candidate', 'active', 'deprecated')),
    json        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE executions (
    id          TEXT PRIMARY KEY,
    procedure   TEXT NOT NULL,
    version     INTEGER NOT NULL,
    status      TEXT NOT NULL,
    json        TEXT NOT NULL,            -- the header: everything but step_runs
    started_at  TEXT NOT NULL,
    seq         INTEGER NOT NULL UNIQUE   -- insertion order, kept on upsert
);
CREATE INDEX executions_by_time ON executions (started_at DESC, seq DESC);
CREATE INDEX executions_by_procedure ON executions (procedure, started_at DESC, seq DESC);

CREATE TABLE step_runs (
    execution_id  TEXT NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    idx           INTEGER NOT NULL CHECK (idx >= 0),
    json          TEXT NOT NULL,
    PRIMARY KEY (execution_id, idx)
);

CREATE TABLE evidence (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id  TEXT NOT NULL,
    json          TEXT NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE INDEX evidence_by_execution ON evidence (execution_id, created_at, id);

-- The search index: one document per procedure name whose current version (the
-- highest active version, else the highest deprecated, else candidate) is active. procedure_index
-- maps a name to the rowid of its procedures_fts row, so a row is replaced by
-- rowid (FTS5 cannot look up an unindexed column without a scan).
CREATE TABLE procedure_index (
    id    INTEGER PRIMARY KEY,
    name  TEXT NOT NULL UNIQUE
);
CREATE VIRTUAL TABLE procedures_fts USING fts5 (
    body,
    tokenize = 'unicode61 remove_diacritics 2'
);

-- Counters; index_revision grows whenever the search index changes, so caches
-- above the store (in this process or another) know when to rebuild.
CREATE TABLE meta (
    key    TEXT PRIMARY KEY,
    value  INTEGER NOT NULL
);
INSERT INTO meta (key, value) VALUES ('index_revision', 0);
