-- procmem SQLite schema, version 8: execution leases (7 is left to the calibration work in progress on main).
--
-- The run (process or client-driven run) that drives an execution holds its
-- lease: lease_owner is its id, lease_expires_at (fixed-width UTC text) when the
-- lease lapses unless renewed. A lease is live while lease_owner is set and
-- lease_expires_at is in the future; it is taken and renewed by one conditional
-- UPDATE, so two processes on one file never both hold it. Rows stored before
-- this version have no lease (NULL): any run may take it.
ALTER TABLE executions ADD COLUMN lease_owner TEXT;
ALTER TABLE executions ADD COLUMN lease_expires_at TEXT;
