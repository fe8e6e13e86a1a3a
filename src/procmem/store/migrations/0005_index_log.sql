-- procmem SQLite schema, version 5: a log of search-index changes.
--
-- Every change of a name's search document (a new version, a status change, a
-- deletion) appends (revision, name), the revision being the new
-- meta.index_revision. A search index cached at revision R then re-reads only
-- the names logged after R instead of every procedure. The name '*' means
-- "everything may have changed" (a tool schema changed, so every card may
-- have). meta.index_log_start is the revision the log starts after: an index
-- older than that is rebuilt whole.
CREATE TABLE index_log (
    revision  INTEGER PRIMARY KEY,
    name      TEXT NOT NULL
);

INSERT INTO meta (key, value)
SELECT 'index_log_start', value FROM meta WHERE key = 'index_revision';
