-- procmem PostgreSQL schema, version 1 (the numbering follows the SQLite migrations).
-- Every table lives in the store's schema (search_path: that schema, then the
-- schema of the pgvector extension). Full records are stored as JSON *text*
-- (model_dump_json(by_alias=True)), never jsonb: text keeps the bytes that were
-- put, and JSON text escapes NUL ("\u0000"), which PostgreSQL's text and jsonb
-- values cannot hold. The other columns are copies for lookups and ordering.
-- Names are COLLATE "C": code-point order (base.py, "Name order").

CREATE TABLE traces (
    id          text PRIMARY KEY,
    json        text NOT NULL,
    -- Commit order: given as MAX(seq) + 1 while put_traces holds the
    -- transaction-level advisory lock of the traces (postgres/traces.py), so a
    -- higher seq always commits later.
    seq         bigint NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL
);

CREATE TABLE procedures (
    name        text COLLATE "C" NOT NULL,
    version     integer NOT NULL CHECK (version >= 1),
    status      text NOT NULL CHECK (status IN ('candidate', 'active', 'deprecated')),
    json        text NOT NULL,
    lineage     text NOT NULL DEFAULT '[]',   -- JSON array of the lineage's trace ids
    created_at  timestamptz NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE executions (
    id           text PRIMARY KEY,
    procedure    text COLLATE "C" NOT NULL,
    version      integer NOT NULL,
    status       text NOT NULL,
    parent_id    text,                    -- copy of json's parent_id (statistics)
    duration_ms  double precision,        -- copy of json's duration_ms (statistics)
    json         text NOT NULL,           -- the header: everything but step_runs
    started_at   timestamptz NOT NULL,
    seq          bigint GENERATED ALWAYS AS IDENTITY UNIQUE   -- first put order, kept on upsert
);
CREATE INDEX executions_by_time ON executions (started_at DESC, seq DESC);
CREATE INDEX executions_by_procedure ON executions (procedure, started_at DESC, seq DESC);

CREATE TABLE step_runs (
    execution_id  text NOT NULL REFERENCES executions (id) ON DELETE CASCADE,
    idx           integer NOT NULL CHECK (idx >= 0),
    json          text NOT NULL,
    PRIMARY KEY (execution_id, idx)
);

CREATE TABLE evidence (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    execution_id  text NOT NULL,
    json          text NOT NULL,
    created_at    timestamptz NOT NULL
);
CREATE INDEX evidence_by_execution ON evidence (execution_id, created_at, id);

-- The keyword documents of search: one row per procedure name, index_text() of
-- its current version (UTF-8 bytes: a document may hold any text, NUL included).
CREATE TABLE procedure_index (
    name    text COLLATE "C" PRIMARY KEY,
    status  text NOT NULL,
    body    bytea NOT NULL
);

-- Counters: index_revision, trace_deletions, store_id (the change feed's), index_log_start.
CREATE TABLE meta (
    key    text PRIMARY KEY,
    value  bigint NOT NULL
);
INSERT INTO meta (key, value) VALUES
    ('index_revision', 0),
    ('trace_deletions', 0),
    ('store_id', floor(random() * 4503599627370496)::bigint);
