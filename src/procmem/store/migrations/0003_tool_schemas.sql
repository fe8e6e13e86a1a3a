-- procmem SQLite schema, version 3: tool schemas and notes about procedures.

-- The current schema of each tool, normalized by procmem.toolschema.parse_tools
-- ({"name", "description", "parameters"[, "strict"]}); hash is the SHA-256 of
-- its canonical JSON (procmem.toolschema.schema_hash).
CREATE TABLE tool_schemas (
    name        TEXT PRIMARY KEY,
    json        TEXT NOT NULL,
    hash        TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);

-- Every schema a tool had before it was replaced, so changes are kept.
CREATE TABLE tool_schema_history (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL,
    hash         TEXT NOT NULL,
    json         TEXT NOT NULL,
    replaced_at  TEXT NOT NULL
);
CREATE INDEX tool_schema_history_by_name ON tool_schema_history (name, id);

-- Append-only notes about a procedure name, by kind (e.g. 'tool_schema': a tool
-- it uses changed, or its args break a tool's schema). Deleted with the procedure.
CREATE TABLE procedure_notes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    json        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);
CREATE INDEX procedure_notes_by_name ON procedure_notes (name, kind, id);
