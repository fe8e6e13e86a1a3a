"""The near-miss suite of issue 11: constructed tasks that must not make procmem send a wrong value.

Two domains, each learned once from demonstrations: τ-retail (:mod:`.retail`, the real
traces and tool schemas) and a clinic front desk written for these tests
(:mod:`.clinic_tools`, :mod:`.clinic_cases`). :mod:`.harness` runs every case the
same way; ``tests/test_near_miss.py`` parametrizes one test per case.
"""
