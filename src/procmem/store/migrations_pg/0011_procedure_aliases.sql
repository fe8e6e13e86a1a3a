-- procmem PostgreSQL schema, version 11: the old names of renamed procedures.
CREATE TABLE procedure_aliases (
    old         text COLLATE "C" PRIMARY KEY,
    new         text COLLATE "C" NOT NULL,
    renamed_at  timestamptz NOT NULL
);
CREATE INDEX procedure_aliases_by_new ON procedure_aliases (new);
