-- procmem PostgreSQL schema, version 8: execution leases.
-- Taken and renewed by one conditional UPDATE (its WHERE is evaluated again on
-- the locked row under READ COMMITTED), so two processes never both hold one.
ALTER TABLE executions ADD COLUMN lease_owner text;
ALTER TABLE executions ADD COLUMN lease_expires_at timestamptz;
