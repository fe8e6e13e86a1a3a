-- procmem SQLite schema, version 10: run counters per procedure version, kept on write.
--
-- procedure_stats holds, per (name, version), the top-level executions
-- (json's parent_id null): runs, finished (succeeded or failed), succeeded,
-- duration_ms (sum over finished runs) and last_started_at (fixed-width UTC
-- text). The triggers below keep it in the same transaction as every write to
-- executions, whatever code path writes, so the counters always equal the
-- aggregate of the executions table (the contract suite checks it). Reading a
-- version's statistics is one primary-key lookup, however many runs it has.
-- A row whose runs fall to 0 stays (with zeros and a NULL last_started_at).

CREATE TABLE procedure_stats (
    name             TEXT NOT NULL,
    version          INTEGER NOT NULL,
    runs             INTEGER NOT NULL DEFAULT 0,
    finished         INTEGER NOT NULL DEFAULT 0,
    succeeded        INTEGER NOT NULL DEFAULT 0,
    duration_ms      REAL NOT NULL DEFAULT 0,
    last_started_at  TEXT,
    PRIMARY KEY (name, version)
);

INSERT INTO procedure_stats (name, version, runs, finished, succeeded, duration_ms, last_started_at)
SELECT procedure, version, COUNT(*),
       SUM(status IN ('succeeded', 'failed')), SUM(status = 'succeeded'),
       TOTAL(CASE WHEN status IN ('succeeded', 'failed')
                  THEN COALESCE(json_extract(json, '$.duration_ms'), 0) END),
       MAX(started_at)
FROM executions WHERE json_extract(json, '$.parent_id') IS NULL
GROUP BY procedure, version;

-- A new top-level execution, or the new side of an update: add it.
CREATE TRIGGER procedure_stats_insert AFTER INSERT ON executions
WHEN json_extract(NEW.json, '$.parent_id') IS NULL
BEGIN
    INSERT INTO procedure_stats (name, version, runs, finished, succeeded, duration_ms,
                                 last_started_at)
    VALUES (NEW.procedure, NEW.version, 1, NEW.status IN ('succeeded', 'failed'),
            NEW.status = 'succeeded',
            CASE WHEN NEW.status IN ('succeeded', 'failed')
                 THEN COALESCE(json_extract(NEW.json, '$.duration_ms'), 0) ELSE 0 END,
            NEW.started_at)
    ON CONFLICT (name, version) DO UPDATE SET
        runs = runs + 1, finished = finished + excluded.finished,
        succeeded = succeeded + excluded.succeeded,
        duration_ms = duration_ms + excluded.duration_ms,
        last_started_at = MAX(COALESCE(last_started_at, ''), excluded.last_started_at);
END;

CREATE TRIGGER procedure_stats_update_add AFTER UPDATE OF procedure, version, status, json,
    started_at ON executions
WHEN json_extract(NEW.json, '$.parent_id') IS NULL
BEGIN
    INSERT INTO procedure_stats (name, version, runs, finished, succeeded, duration_ms,
                                 last_started_at)
    VALUES (NEW.procedure, NEW.version, 1, NEW.status IN ('succeeded', 'failed'),
            NEW.status = 'succeeded',
            CASE WHEN NEW.status IN ('succeeded', 'failed')
                 THEN COALESCE(json_extract(NEW.json, '$.duration_ms'), 0) ELSE 0 END,
            NEW.started_at)
    ON CONFLICT (name, version) DO UPDATE SET
        runs = runs + 1, finished = finished + excluded.finished,
        succeeded = succeeded + excluded.succeeded,
        duration_ms = duration_ms + excluded.duration_ms,
        last_started_at = MAX(COALESCE(last_started_at, ''), excluded.last_started_at);
END;

-- The old side of an update: take it away.
CREATE TRIGGER procedure_stats_update_remove AFTER UPDATE OF procedure, version, status, json,
    started_at ON executions
WHEN json_extract(OLD.json, '$.parent_id') IS NULL
BEGIN
    UPDATE procedure_stats SET
        runs = runs - 1, finished = finished - (OLD.status IN ('succeeded', 'failed')),
        succeeded = succeeded - (OLD.status = 'succeeded'),
        duration_ms = MAX(0, duration_ms - CASE WHEN OLD.status IN ('succeeded', 'failed')
            THEN COALESCE(json_extract(OLD.json, '$.duration_ms'), 0) ELSE 0 END)
    WHERE name = OLD.procedure AND version = OLD.version;
END;

-- An update that moves the old side's start (rare: a header keeps its start),
-- or a delete: the latest start is read again from the table.
CREATE TRIGGER procedure_stats_update_last AFTER UPDATE OF procedure, version, json,
    started_at ON executions
WHEN json_extract(OLD.json, '$.parent_id') IS NULL
     AND (OLD.procedure IS NOT NEW.procedure OR OLD.version IS NOT NEW.version
          OR OLD.started_at IS NOT NEW.started_at
          OR json_extract(NEW.json, '$.parent_id') IS NOT NULL)
BEGIN
    UPDATE procedure_stats SET last_started_at = (
        SELECT MAX(started_at) FROM executions
        WHERE procedure = OLD.procedure AND version = OLD.version
          AND json_extract(json, '$.parent_id') IS NULL)
    WHERE name = OLD.procedure AND version = OLD.version;
END;

CREATE TRIGGER procedure_stats_delete AFTER DELETE ON executions
WHEN json_extract(OLD.json, '$.parent_id') IS NULL
BEGIN
    UPDATE procedure_stats SET
        runs = runs - 1, finished = finished - (OLD.status IN ('succeeded', 'failed')),
        succeeded = succeeded - (OLD.status = 'succeeded'),
        duration_ms = MAX(0, duration_ms - CASE WHEN OLD.status IN ('succeeded', 'failed')
            THEN COALESCE(json_extract(OLD.json, '$.duration_ms'), 0) ELSE 0 END),
        last_started_at = (
            SELECT MAX(started_at) FROM executions
            WHERE procedure = OLD.procedure AND version = OLD.version
              AND json_extract(json, '$.parent_id') IS NULL)
    WHERE name = OLD.procedure AND version = OLD.version;
END;
