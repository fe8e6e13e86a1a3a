"""Fuzz: hostile trace files and transcripts get procmem's errors, never a traceback.

Hypothesis writes at least 2,000 files (4 formats x 500 examples): transcripts of
random shape (right keys, wrong types), deep nesting, lone surrogates, truncated
and non-UTF-8 lines. Each goes through the importer (``import_transcripts``,
``skip_invalid`` on and off) and what it returns through ``Memory.add_traces``.
The only exceptions allowed are :class:`procmem.core.errors.ProcmemError`; when
``add_traces`` refuses a batch, the store holds exactly what it held before.

The full run (2,000 files, about 40 s) is the ``slow`` lane:
``python -m pytest -m slow``; the default lane runs 50 examples per format.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from procmem import Memory
from procmem.core.errors import ProcmemError
from procmem.formats.importers import import_transcripts

FORMATS = ["procmem", "openai-chat", "openai-responses", "anthropic"]
# examples per format: 50 in the default lane, 500 (2,000 files in all) in the slow lane
EXAMPLES = [50, pytest.param(500, marks=pytest.mark.slow)]

scalars = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | st.text(max_size=12))
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=3)
                           | st.dictionaries(st.text(max_size=6), c, max_size=3), max_leaves=12)
KEYS = ["role", "content", "tool_calls", "type", "id", "call_id", "name", "arguments", "output",
        "input", "tool_use_id", "text", "function", "task", "steps", "action", "args", "outcome",
        "reward", "messages", "items", "metadata", "error", "is_error", "source"]
shaped = st.dictionaries(st.sampled_from(KEYS), json_values | st.lists(
    st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5), max_size=4), max_size=6)
transcripts = shaped | st.lists(shaped, max_size=4) | json_values


def _deep(n: int, inner: str = "1") -> str:
    return "[" * n + inner + "]" * n


hostile_lines = st.one_of(
    transcripts.map(lambda v: json.dumps(v)),
    st.integers(200, 3000).map(_deep),
    st.integers(200, 3000).map(lambda n: '{"task": "t", "steps": ' + _deep(n, "{}") + "}"),
    st.integers(200, 3000).map(lambda n: '{"messages": ' + _deep(n, '{"role": "user"}') + "}"),
    st.sampled_from(['{"task": "\\ud800", "steps": []}',
                     '{"messages": [{"role": "user", "content": "\\udfff"}]}',
                     '[{"type": "function_call", "name": "\\ud834", "arguments": "{}",'
                     ' "call_id": "c"}]',
                     '{"task": "x", "steps": [{"action": "a", "args": {"\\ud800": 1}}]}']),
    transcripts.map(lambda v: json.dumps(v)[: max(1, len(json.dumps(v)) // 2)]),  # truncated
)
files = st.lists(hostile_lines, min_size=1, max_size=3).map(lambda ls: "\n".join(ls))


def _ingest(mem: Memory, path: Path, fmt: str) -> None:
    for skip in (True, False):
        try:
            traces, _ = import_transcripts(path, fmt, skip_invalid=skip)
        except ProcmemError:
            continue
        before = mem.store.count_traces()
        try:
            mem.add_traces(traces)
        except ProcmemError:
            assert mem.store.count_traces() == before  # nothing stored half


@pytest.mark.parametrize("examples", EXAMPLES)
@pytest.mark.parametrize("fmt", FORMATS)
def test_hostile_files_get_our_errors(fmt: str, examples: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, Memory(":memory:", embedder=None) as mem:
        path = Path(tmp) / "hostile.jsonl"

        @settings(max_examples=examples, deadline=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(text=files, raw=st.booleans())
        def run(text: str, raw: bool) -> None:
            data: Any = text.encode("utf-8", "surrogatepass")
            if raw:  # sometimes not UTF-8 at all
                data = b"\xff\xfe" + data
            path.write_bytes(data)
            _ingest(mem, path, fmt)
            if fmt == "procmem":
                try:
                    mem.import_traces(path, skip_invalid=True)
                except ProcmemError:
                    pass

        run()
