-- procmem PostgreSQL schema, version 13: saved search indexes stored uncompressed.
--
-- A saved index is a few hundred MiB at 100,000 procedures (319 MiB) and is saved
-- again every 1,000 index revisions, inside a search. With the default storage
-- PostgreSQL compresses it with pglz on the way in: 7.1 s for one INSERT of it,
-- against 2.2 s stored as it is (benchmarks/README.md, "bench_backends.py"); its
-- arrays barely compress. Rows saved before keep their form until saved again.
ALTER TABLE index_snapshots ALTER COLUMN data SET STORAGE EXTERNAL;
