-- procmem PostgreSQL schema, version 12: jobs of long work (learn, optimize), shared by
-- every server process on the store (procmem.store.jobs.JobRecords).
CREATE TABLE jobs (
    id          text COLLATE "C" PRIMARY KEY,
    status      text NOT NULL,
    created_at  timestamptz NOT NULL,
    json        text NOT NULL
);
CREATE INDEX jobs_by_created ON jobs (created_at, id);
