-- procmem PostgreSQL schema, version 5: the log of search-index changes.
-- (revision, name) per change of a name's document; '*' means every document.
-- Revisions are given under the row lock of meta.index_revision, held until
-- commit, so revisions commit in ascending order.
CREATE TABLE index_log (
    revision  bigint PRIMARY KEY,
    name      text COLLATE "C" NOT NULL
);

INSERT INTO meta (key, value)
SELECT 'index_log_start', value FROM meta WHERE key = 'index_revision';
