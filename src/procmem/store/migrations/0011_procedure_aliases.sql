-- procmem SQLite schema, version 11: the old names of renamed procedures.
--
-- Renaming a procedure (Store.rename_procedure) moves every row keyed by its
-- name to the new name in one transaction and records (old, new) here, so the
-- old name still resolves. A later rename of NEW re-points the rows whose new
-- is it (no chains); renaming back to an old name drops that alias.
CREATE TABLE procedure_aliases (
    old         TEXT PRIMARY KEY,
    new         TEXT NOT NULL,
    renamed_at  TEXT NOT NULL
);
CREATE INDEX procedure_aliases_by_new ON procedure_aliases (new);
