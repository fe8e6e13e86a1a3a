-- procmem SQLite schema, version 9: API keys of the HTTP servers (procmem.keys).
--
-- One row per key. The key's secret is never stored: secret_hash is the hex
-- SHA-256 of the key id and its 256-bit random secret (procmem.keys.hash_secret).
-- A key is bound to one tenant and a JSON list of scopes (read, write, run,
-- admin); revoked_at (fixed-width UTC text) is set once and never cleared.
-- Keys live in the memory's main file only; a tenant's data lives in its own
-- file (procmem.store.tenant_location), so no tenant's data row has a key row
-- beside it.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    tenant       TEXT NOT NULL,
    scopes       TEXT NOT NULL,
    secret_hash  TEXT NOT NULL,
    name         TEXT NOT NULL DEFAULT '',
    created_at   TEXT NOT NULL,
    revoked_at   TEXT
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant, created_at);
