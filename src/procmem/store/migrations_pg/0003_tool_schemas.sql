-- procmem PostgreSQL schema, version 3: tool schemas (with history) and procedure notes.
CREATE TABLE tool_schemas (
    name        text COLLATE "C" PRIMARY KEY,
    json        text NOT NULL,
    hash        text NOT NULL,
    updated_at  timestamptz NOT NULL
);

CREATE TABLE tool_schema_history (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         text COLLATE "C" NOT NULL,
    hash         text NOT NULL,
    json         text NOT NULL,
    replaced_at  timestamptz NOT NULL
);
CREATE INDEX tool_schema_history_by_name ON tool_schema_history (name, id);

CREATE TABLE procedure_notes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text COLLATE "C" NOT NULL,
    kind        text NOT NULL,
    json        text NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX procedure_notes_by_name ON procedure_notes (name, kind, id);
