-- procmem SQLite schema, version 6: saved search indexes.
--
-- A search index built from many procedures (BM25 term ids, vector rows, the
-- HNSW graph) is saved here so that the next process loads it instead of
-- building it again, then applies the index_log entries after its revision.
-- key is the embedding model id of the index, or 'bm25' for a keyword-only one;
-- data is the format-versioned blob written by procmem.search_index.dump_index.
CREATE TABLE index_snapshots (
    key         TEXT PRIMARY KEY,
    revision    INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    data        BLOB NOT NULL
);
