-- procmem PostgreSQL schema, version 10: run counters per procedure version, kept on write.
--
-- As on SQLite: per (name, version), the top-level executions (parent_id null):
-- runs, finished (succeeded or failed), succeeded, duration_ms (sum over
-- finished) and last_started_at. One plpgsql trigger keeps them in the same
-- transaction as every write to executions, whatever code path writes.
CREATE TABLE procedure_stats (
    name             text COLLATE "C" NOT NULL,
    version          integer NOT NULL,
    runs             bigint NOT NULL DEFAULT 0,
    finished         bigint NOT NULL DEFAULT 0,
    succeeded        bigint NOT NULL DEFAULT 0,
    duration_ms      double precision NOT NULL DEFAULT 0,
    last_started_at  timestamptz,
    PRIMARY KEY (name, version)
);

INSERT INTO procedure_stats (name, version, runs, finished, succeeded, duration_ms, last_started_at)
SELECT procedure, version, COUNT(*),
       COUNT(*) FILTER (WHERE status IN ('succeeded', 'failed')),
       COUNT(*) FILTER (WHERE status = 'succeeded'),
       COALESCE(SUM(COALESCE(duration_ms, 0)) FILTER (WHERE status IN ('succeeded', 'failed')), 0),
       MAX(started_at)
FROM executions WHERE parent_id IS NULL
GROUP BY procedure, version;

CREATE FUNCTION procedure_stats_keep() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    done boolean;
BEGIN
    -- The old side (an update or a delete): take it away.
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.parent_id IS NULL THEN
        done := OLD.status IN ('succeeded', 'failed');
        UPDATE procedure_stats SET
            runs = runs - 1,
            finished = finished - done::int,
            succeeded = succeeded - (OLD.status = 'succeeded')::int,
            duration_ms = GREATEST(0, duration_ms
                - CASE WHEN done THEN COALESCE(OLD.duration_ms, 0) ELSE 0 END)
        WHERE name = OLD.procedure AND version = OLD.version;
        IF TG_OP = 'DELETE' OR OLD.procedure IS DISTINCT FROM NEW.procedure
           OR OLD.version IS DISTINCT FROM NEW.version
           OR OLD.started_at IS DISTINCT FROM NEW.started_at
           OR NEW.parent_id IS NOT NULL THEN
            UPDATE procedure_stats SET last_started_at = (
                SELECT MAX(started_at) FROM executions
                WHERE procedure = OLD.procedure AND version = OLD.version
                  AND parent_id IS NULL)
            WHERE name = OLD.procedure AND version = OLD.version;
        END IF;
    END IF;
    -- The new side (an insert or an update): add it.
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.parent_id IS NULL THEN
        done := NEW.status IN ('succeeded', 'failed');
        INSERT INTO procedure_stats AS s (name, version, runs, finished, succeeded,
                                          duration_ms, last_started_at)
        VALUES (NEW.procedure, NEW.version, 1, done::int, (NEW.status = 'succeeded')::int,
                CASE WHEN done THEN COALESCE(NEW.duration_ms, 0) ELSE 0 END, NEW.started_at)
        ON CONFLICT (name, version) DO UPDATE SET
            runs = s.runs + 1, finished = s.finished + excluded.finished,
            succeeded = s.succeeded + excluded.succeeded,
            duration_ms = s.duration_ms + excluded.duration_ms,
            last_started_at = GREATEST(s.last_started_at, excluded.last_started_at);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER procedure_stats_keep
AFTER INSERT OR DELETE OR UPDATE OF procedure, version, status, parent_id, duration_ms, started_at
ON executions FOR EACH ROW EXECUTE FUNCTION procedure_stats_keep();
