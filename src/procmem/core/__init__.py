"""Core model and replay: the records, the template language, the sans-IO replay core and its
drivers, leases, the one execution shape.

See ``docs/architecture.md`` for the map of subsystems and the import rules.
"""
