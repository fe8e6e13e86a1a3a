"""Evaluation: ``procmem eval`` and its metrics.

See ``docs/architecture.md`` for the map of subsystems and the import rules.
"""
