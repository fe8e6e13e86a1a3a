-- procmem SQLite schema, version 12: jobs of long work (learn, optimize).
--
-- A server runs POST /learn and POST /optimize with `Prefer: respond-async` as a
-- job; its state is stored here so that every server process on this store
-- answers GET /jobs/{id} alike (procmem.store.jobs.JobRecords). `json` is the
-- whole record; the other columns are copies for ordering and pruning.
CREATE TABLE jobs (
    id          TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    json        TEXT NOT NULL
);
CREATE INDEX jobs_by_created ON jobs (created_at, id);
