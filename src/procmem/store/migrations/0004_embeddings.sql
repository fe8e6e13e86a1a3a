-- procmem SQLite schema, version 4: text embeddings for hybrid search.

-- One vector per (embedding model, distinct text): hash is the SHA-256 of the
-- UTF-8 text, vector the float32 little-endian bytes of its L2-normalized
-- embedding (dim floats). Computed once per text and model; a new model gets
-- its own rows (procmem reindex), so vectors of different spaces never mix.
CREATE TABLE embeddings (
    model_id    TEXT NOT NULL,
    hash        TEXT NOT NULL,
    dim         INTEGER NOT NULL,
    vector      BLOB NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (model_id, hash)
) WITHOUT ROWID;

-- The search index now holds the current version of every name, whatever its
-- status, so search can filter by status; rows indexed before were all active.
ALTER TABLE procedure_index ADD COLUMN status TEXT NOT NULL DEFAULT 'active';
