"""Search: BM25 and vectors, fusion, abstention, calibrated confidence.

See ``docs/architecture.md`` for the map of subsystems and the import rules.
"""
