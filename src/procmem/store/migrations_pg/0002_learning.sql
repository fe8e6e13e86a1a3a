-- procmem PostgreSQL schema, version 2: pins and verification records.
CREATE TABLE procedure_flags (
    name    text COLLATE "C" PRIMARY KEY,
    pinned  boolean NOT NULL DEFAULT false
);

CREATE TABLE verifications (
    name     text COLLATE "C" NOT NULL,
    version  integer NOT NULL,
    json     text NOT NULL,
    PRIMARY KEY (name, version)
);
