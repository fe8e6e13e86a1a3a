"""MCP adapters: the server (stdio and HTTP), its tools, and the proxy.

See ``docs/architecture.md`` for the map of subsystems and the import rules.
"""
