"""``procmem copy`` and :func:`procmem.store.copy.copy_store`: a whole store, between backends.

The source is a memory built with real data (the bundled τ-retail sample learned,
tool schemas imported, procedures replayed against the recorded outputs, evidence
reported, a rename, a pin, API keys, embeddings), opened with the chosen test
backend (``--store-backend``); the destinations are SQLite and the dict backend.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from dictstore import DictStore
from embedders import CountingEmbedder
from procmem.cli import main
from procmem.core.errors import Conflict, StoreError, UsageError
from procmem.core.model import Evidence, StepRun
from procmem.memory import Memory
from procmem.security.keys import KeyRing
from procmem.store import SQLiteStore, Store, open_store
from procmem.store.copy import KINDS, copy_store, shown_location, store_fingerprint
from webui_store import recorded_tools

TOOLS = Path(__file__).parent / "data" / "tau-retail-tools.json"


def _build(path: Path, sample: Path) -> None:
    with Memory(path, embedder=CountingEmbedder()) as mem:
        mem.import_traces(sample)
        mem.import_tool_schemas(TOOLS)
        mem.learn()
        procs = mem.list_procedures()
        for i, proc in enumerate(procs[:10]):
            trace_id = proc.lineage.traces[0]
            run = mem.replay(proc, tools=recorded_tools(mem, trace_id),
                             task=mem.get_trace(trace_id).task)
            mem.report(run.id, reward=float(i % 2), source="environment", note=f"run {i}")
        store = mem.store
        first, second = procs[0], procs[1]
        store.put_procedure(first.model_copy(update={"version": first.version + 1,
                                                     "status": "candidate",
                                                     "description": "a candidate"}))
        store.set_status(second.name, second.version, "deprecated")
        store.put_verification(first.name, first.version, {"ok": True, "runs": 3})
        store.add_procedure_note(first.name, "review", {"text": "checked by hand"})
        store.put_calibration("bm25", json.dumps({"threshold": 0.4}))
        mem.rename(first.name, "renamed_flow")
        mem.pin(second.name)
        ring = KeyRing(store)
        revoked, _ = ring.create(tenant="acme", scopes=["read"], name="old agent")
        ring.create(scopes=["read", "write", "run"])
        ring.revoke(revoked.id)
        mem.search("cancel the pending order")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, tau_sample_path: Path) -> Path:
    path = tmp_path_factory.mktemp("copy") / "m.db"
    _build(path, tau_sample_path)
    return path


@pytest.fixture
def source(built: Path) -> Iterator[Store]:
    """The built store, opened with the test backend (the tests only read it)."""
    store = open_store(built)
    yield store
    store.close()


def _executions(store: Store) -> list[Any]:
    return [e.model_dump() for e in store.list_executions(limit=1000)]


@pytest.mark.parametrize("backend", [SQLiteStore, DictStore], ids=["sqlite", "dictstore"])
def test_every_record_kind_is_copied_and_verified(source: Store, tmp_path: Path,
                                                  backend: type[Store]) -> None:
    dst = backend(str(tmp_path / "copy.db"))
    seen: list[tuple[str, int, int | None]] = []
    report = copy_store(source, dst, progress=lambda k, d, t: seen.append((k, d, t)))
    assert report.ok and report.mismatched == []
    assert [k.kind for k in report.kinds] == list(KINDS)
    counts = {k.kind: k.source_count for k in report.kinds}
    assert all(n > 0 for n in counts.values()), counts  # the data exercises every kind
    assert counts["traces"] == source.count_traces() == dst.count_traces()
    assert store_fingerprint(dst) == store_fingerprint(source)
    assert ("traces", counts["traces"], counts["traces"]) in seen
    # spot checks through the protocol
    assert _executions(dst) == _executions(source)  # same order: ties kept
    assert dst.list_traces(limit=1000) == source.list_traces(limit=1000)
    assert dst.list_aliases() == source.list_aliases() != {}
    old = next(iter(source.list_aliases()))
    assert dst.resolve_alias(old) == "renamed_flow"
    assert [p.status for p in dst.list_versions("renamed_flow")] == \
        [p.status for p in source.list_versions("renamed_flow")]
    assert dst.list_evidence() == source.list_evidence()
    names = [p.name for p in source.list_procedures(limit=1000)]
    assert dst.procedure_stats(names) == source.procedure_stats(names)
    assert dst.index_documents(None) == source.index_documents(None)
    keys = dst.list_api_keys()
    assert keys == source.list_api_keys() and any(k.revoked for k in keys)
    dst.close()


def test_search_on_the_copy_answers_like_the_source(built: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.db"
    src, dst = open_store(built), open_store(copy)  # the test backend: Memory opens them
    try:
        assert copy_store(src, dst).ok
    finally:
        src.close()
        dst.close()
    query = "I want to cancel my pending order #W2378156, I ordered by mistake"
    with Memory(built, embedder=CountingEmbedder()) as a, \
            Memory(copy, embedder=CountingEmbedder()) as b:
        hits_a, hits_b = a.search(query, limit=5), b.search(query, limit=5)
        assert hits_a and [h.procedure.name for h in hits_a] == \
            [h.procedure.name for h in hits_b]
        assert [round(h.score, 9) for h in hits_a] == [round(h.score, 9) for h in hits_b]


def test_a_round_trip_through_the_dict_backend_comes_back_equal(source: Store,
                                                                tmp_path: Path) -> None:
    middle = DictStore(":memory:")
    back = SQLiteStore(tmp_path / "back.db")
    assert copy_store(source, middle).ok
    assert copy_store(middle, back).ok
    assert store_fingerprint(back) == store_fingerprint(source)
    back.close()


def test_a_destination_that_holds_anything_is_refused(source: Store, tmp_path: Path) -> None:
    dst = SQLiteStore(tmp_path / "full.db")
    dst.put_calibration("mine", "{}")
    before = store_fingerprint(dst)
    with pytest.raises(Conflict, match="not empty .*1 calibrations"):
        copy_store(source, dst)
    assert store_fingerprint(dst) == before
    with pytest.raises(UsageError, match="onto itself"):
        copy_store(source, source)
    dst.close()


class _FailsAtEvidence(DictStore):
    def put_evidence(self, evidence: Evidence) -> None:
        raise StoreError("disk full")


class _DropsStepRuns(DictStore):
    def put_step_run(self, execution_id: str, step_run: StepRun) -> None:
        return None  # a backend bug: step runs silently lost


def test_a_failing_destination_is_left_empty_with_a_clear_error(source: Store) -> None:
    dst = _FailsAtEvidence(":memory:")
    with pytest.raises(StoreError) as info:
        copy_store(source, dst)
    message = str(info.value)
    assert "while copying evidence (0 of" in message and "disk full" in message
    assert "rolled back" in message
    assert dst.count_traces() == 0 and dst.count_procedures() == 0
    assert dst.list_executions() == [] and dst.list_api_keys() == []


def test_a_destination_that_loses_records_fails_verification(source: Store) -> None:
    report = copy_store(source, _DropsStepRuns(":memory:"))
    assert not report.ok
    assert report.mismatched == ["step_runs"]
    bad = next(k for k in report.kinds if k.kind == "step_runs")
    assert bad.dest_count == 0 < bad.source_count


def test_the_fingerprint_hashes_content_not_order(tmp_path: Path) -> None:
    a, b = SQLiteStore(":memory:"), SQLiteStore(":memory:")
    a.put_calibration("x", "1")
    a.put_calibration("y", "2")
    b.put_calibration("y", "2")
    b.put_calibration("x", "1")
    assert store_fingerprint(a) == store_fingerprint(b)
    b.put_calibration("x", "3")
    assert store_fingerprint(a)["calibrations"] != store_fingerprint(b)["calibrations"]
    assert store_fingerprint(a)["calibrations"][0] == 2


def test_a_password_in_a_url_is_never_shown() -> None:
    assert shown_location("postgresql://app:s3cret@db:5432/m") == "postgresql://app:***@db:5432/m"
    assert shown_location("postgresql://app@db/m") == "postgresql://app@db/m"
    assert shown_location("memory.db") == "memory.db"


# ------------------------------------------------------------------------ CLI


def _cli(*args: str) -> Any:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _needs_a_file(path: Path) -> None:
    if not path.exists():  # e.g. pgstore:factory keeps a path's data in a schema
        pytest.skip("the test backend keeps no file at a store's path; SRC must exist")


def test_cli_copies_and_prints_the_report(built: Path, tmp_path: Path) -> None:
    _needs_a_file(built)
    dst = tmp_path / "copy.db"
    result = _cli("copy", str(built), str(dst), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and set(report["kinds"]) == set(KINDS)
    assert report["kinds"]["traces"]["dest_count"] == 120
    human = _cli("copy", str(built), str(tmp_path / "again.db"))
    assert human.exit_code == 0
    assert "verified: every kind" in human.stdout and "index snapshots" in human.stdout


def test_cli_refuses_a_full_destination_and_a_missing_source(built: Path,
                                                             tmp_path: Path) -> None:
    _needs_a_file(built)
    dst = tmp_path / "copy.db"
    assert _cli("copy", str(built), str(dst)).exit_code == 0
    again = _cli("copy", str(built), str(dst))
    assert again.exit_code == 4
    assert "error[conflict]" in again.stderr and "not empty" in again.stderr
    missing = _cli("copy", str(tmp_path / "nope.db"), str(tmp_path / "x.db"))
    assert missing.exit_code == 3 and "no store at" in missing.stderr
    assert not (tmp_path / "nope.db").exists()
    nofolder = _cli("copy", str(built), str(tmp_path / "no" / "x.db"))
    assert nofolder.exit_code == 2
