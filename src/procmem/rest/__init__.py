"""REST adapter: the FastAPI app, its models, keys and jobs.

See ``docs/architecture.md`` for the map of subsystems and the import rules.
"""
