"""Security tests of issue 12: keys, tenants and the HTTP servers' door (REST and MCP)."""
