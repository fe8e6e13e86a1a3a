"""Services: the parts ``Memory`` is composed of, each built and tested alone.

See ``docs/architecture.md`` for the map of subsystems and the import rules.
"""
