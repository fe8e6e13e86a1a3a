-- procmem PostgreSQL schema, version 9: API keys (hashes only, never secrets).
CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    tenant       text NOT NULL,
    scopes       text NOT NULL,            -- JSON list
    secret_hash  text NOT NULL,
    name         text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant, created_at);
