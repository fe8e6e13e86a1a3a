"""The near-miss suite (issue 11): for each constructed task, the right values are sent,
or the replay stops before the tool that would take a wrong one.

One test per case (``domain:category:name``); :mod:`near_miss.harness` runs them all
the same way. Each domain is learned once per module; each case replays on its own
copy of that store. ``pytest tests/test_near_miss.py -s`` prints the totals: cases,
calls sent, wrong calls sent, cases failing, and how far each case went (stage).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from near_miss import clinic_cases, retail
from near_miss.clinic_tools import ClinicDesk
from near_miss.harness import (
    CATEGORIES,
    Call,
    Case,
    Outcome,
    TrainingSet,
    check,
    describe,
    learned_store,
    recording_tools,
    run_case,
)


def _retail_tools(sent: list[Call]) -> dict[str, Callable[..., Any]]:
    return recording_tools(retail.SIGNATURES, retail.output, sent)


def _clinic_tools(sent: list[Call]) -> dict[str, Callable[..., Any]]:
    desk = ClinicDesk()
    return recording_tools(clinic_cases.SIGNATURES, desk.call, sent)


DOMAINS: dict[str, tuple[TrainingSet, list[Case], Callable[[list[Call]], Any]]] = {
    "retail": (retail.TRAINING, retail.CASES, _retail_tools),
    "clinic": (clinic_cases.TRAINING, clinic_cases.CASES, _clinic_tools),
    **{f"clinic-reserved-{key}": (training, [c for k, c in clinic_cases.RESERVED_CASES
                                             if k == key], _clinic_tools)
       for key, training in clinic_cases.RESERVED.items()},
}
CASES = [(domain, case) for domain, (_, cases, _) in DOMAINS.items() for case in cases]
_OUTCOMES: list[tuple[str, Outcome]] = []


@pytest.fixture(scope="module")
def learned(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """The store learned for a domain, made on first use (a learning error is re-raised)."""
    made: dict[str, Path | Exception] = {}

    def get(domain: str) -> Path:
        if domain not in made:
            try:
                made[domain] = learned_store(DOMAINS[domain][0],
                                             tmp_path_factory.mktemp(domain) / "learned.db")
            except Exception as err:  # every case of the domain reports it
                made[domain] = err
        got = made[domain]
        if isinstance(got, Exception):
            raise got
        return got

    return get


@pytest.fixture(scope="module", autouse=True)
def _totals() -> Iterator[None]:
    """Print the suite's totals after the module (visible with ``-s``)."""
    yield
    if not _OUTCOMES:
        return
    sent = sum(len(o.sent) for _, o in _OUTCOMES)
    wrong = [(d, o) for d, o in _OUTCOMES if o.wrong]
    failed = [(d, o) for d, o in _OUTCOMES if check(o) or o.stage == "learn-error"]
    stages = Counter(o.stage for _, o in _OUTCOMES)
    print(f"\nnear-miss suite: {len(_OUTCOMES)} cases, {sent} calls sent, "
          f"{sum(len(o.wrong) for _, o in wrong)} wrong calls sent (in {len(wrong)} cases), "
          f"{len(failed)} cases failing; stages: "
          + ", ".join(f"{stage} {n}" for stage, n in stages.most_common()))
    for domain, o in failed:
        why = check(o)[0].splitlines()[0] if check(o) else o.detail
        print(f"  FAIL {domain}:{o.case.category}:{o.case.name} -> {o.stage} "
              f"({o.selected}): {why}")


@pytest.mark.parametrize(("domain", "case"), [
    pytest.param(d, c, id=f"{d}:{c.category}:{c.name}") for d, c in CASES])
def test_near_miss(domain: str, case: Case, learned: Callable[[str], Path],
                   tmp_path: Path) -> None:
    try:
        store = learned(domain)
    except Exception as err:  # counted in the totals, then reported as the failure
        _OUTCOMES.append((domain, Outcome(case, "learn-error", detail=repr(err))))
        raise
    outcome = run_case(case, store, tmp_path / "store", DOMAINS[domain][2])
    _OUTCOMES.append((domain, outcome))
    problems = check(outcome)
    assert not problems, "\n".join(problems) + "\n" + describe(outcome)


def test_the_suite_covers_every_category_in_both_domains() -> None:
    assert len(CASES) >= 60
    assert len({(d.split("-")[0], c.name) for d, c in CASES}) == len(CASES)  # unique names
    for kind in ("retail", "clinic"):
        mine = [c for d, c in CASES if d.startswith(kind)]
        assert sum(c.must_complete for c in mine) < len(mine) / 3, kind  # a minority
        seen = {c.category for c in mine}
        wanted = set(CATEGORIES) - ({"reserved"} if kind == "retail" else set())
        assert seen == wanted, kind
        assert len(mine) >= 30, kind


def test_the_clinic_expectations_agree_with_the_tools() -> None:
    """Every clinic case's expected calls run on a fresh desk without a tool error.

    Guards the hand-written expectations (patient ids, the first booking's id), so a
    case fails only for what procmem sends.
    """
    for case in clinic_cases.CASES + [c for _, c in clinic_cases.RESERVED_CASES]:
        desk = ClinicDesk()
        for call in case.expected:
            desk.call(call.action, dict(call.args))  # raises ValueError on a bad call
