-- procmem SQLite schema, version 2: what learning over time needs.

-- Mutable, per procedure name: pinned procedures are never deprecated by decay.
CREATE TABLE procedure_flags (
    name    TEXT PRIMARY KEY,
    pinned  INTEGER NOT NULL DEFAULT 0 CHECK (pinned IN (0, 1))
);

-- The verification of a candidate version: which recorded runs it reproduced.
CREATE TABLE verifications (
    name     TEXT NOT NULL,
    version  INTEGER NOT NULL,
    json     TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
