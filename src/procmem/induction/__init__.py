"""Induction and binding: learning a parameterized procedure from traces, binding a task's values,
plans.

See ``docs/architecture.md`` for the map of subsystems and the import rules.
"""
