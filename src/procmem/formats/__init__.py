"""Formats: reading and writing traces, transcripts, skills and tool schemas; one serializer per
shape.

See ``docs/architecture.md`` for the map of subsystems and the import rules.
"""
