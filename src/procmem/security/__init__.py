"""Security: API keys and scopes, tenants, secrets, linear-time patterns, size limits, long work
off the request path, HTTP guards.

See ``docs/architecture.md`` for the map of subsystems and the import rules.
"""
