"""Executions and evidence are ingest paths too: a secret in a replay's task, a tool's
output, an answer or an evidence note is stored redacted, and a resume that reads a
redacted value back asks for it again instead of sending the marker."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from procmem import Memory
from procmem.core.model import Procedure
from procmem.security.secret_params import contains_marker

JWT = ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbm4iLCJpYXQiOjE3MDAwMDAwMDB9."
       "Qm9uZGVkU2lnbmF0dXJlVmFsdWVGb3JUZXN0aW5nMTIzNDU2")
AWS = "AKIAQ3ZXN7T2EXAMPLE7"
PASSWORD = "Tr0ub4dor&3-horse-battery"

PROC = Procedure.model_validate({
    "name": "login_then_fetch", "description": "log in, then fetch the report",
    "params": [{"name": "user", "schema": {"type": "string"}}],
    "steps": [
        {"id": "s1", "action": "login", "args": {"user": {"$param": "user"}}},
        {"id": "s2", "action": "fetch_report",
         "args": {"token": {"$step": "s1", "path": "/token"},
                  "format": {"$ask": "which format?"}}},
    ],
})


def _db_bytes(tmp_path: Path, stem: str) -> bytes:
    return b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith(stem))


def test_a_secret_in_a_task_output_answer_or_note_is_not_stored(tmp_path: Path) -> None:
    sent: list[dict[str, Any]] = []
    tools = {"login": lambda **kw: {"token": JWT, "user": kw["user"]},
             "fetch_report": lambda **kw: sent.append(kw) or {"ok": True}}
    with Memory(tmp_path / "x.db", embedder=None) as mem:
        mem.put_procedure(PROC)
        ex = mem.replay(PROC.name, tools=tools, task=f"fetch as ann, my password is {PASSWORD}",
                        params={"user": "ann"}, resolver=lambda need: "pdf")
        assert ex.status == "succeeded", ex
        assert sent == [{"token": JWT, "format": "pdf"}]  # the run itself used the clear value
        mem.report(ex.id, reward=1.0, source="user", note=f"worked; key {AWS}")
        stored = mem.get_execution(ex.id).model_dump_json()
        notes = json.dumps([e.model_dump(mode="json") for e in mem.store.list_evidence(ex.id)])
    for secret in (JWT, AWS, PASSWORD):
        assert secret not in stored and secret not in notes
        assert secret.encode() not in _db_bytes(tmp_path, "x.db")
    assert "[REDACTED" in stored and "[REDACTED" in notes


def test_a_resume_never_sends_a_value_redacted_when_stored(tmp_path: Path) -> None:
    sent: list[dict[str, Any]] = []
    tools = {"login": lambda **kw: {"token": JWT},
             "fetch_report": lambda **kw: sent.append(kw) or {"ok": True}}
    db = tmp_path / "r.db"
    with Memory(db, embedder=None) as first:
        first.put_procedure(PROC)
        paused = first.replay(PROC.name, tools=tools, params={"user": "ann"})
        assert paused.status == "paused" and [n.key for n in paused.needs] == ["ask:s2:/format"]
    # another process: the token it reads back from the store is a marker
    with Memory(db, embedder=None) as second:
        stored = second.get_execution(paused.id)
        assert contains_marker(stored.step_runs[0].output)
        again = second.resume(paused.id, {"ask:s2:/format": "pdf"}, tools=tools)
        assert again.status == "paused" and sent == []  # nothing was sent with a marker
        (need,) = again.needs
        assert need.key == "ask:s2:/token" and "redacted" in need.prompt
        done = second.resume(paused.id, {"ask:s2:/token": "fresh-token-from-the-user"},
                             tools=tools)
        assert done.status == "succeeded", done
    assert sent == [{"token": "fresh-token-from-the-user", "format": "pdf"}]


def test_a_param_redacted_when_stored_is_asked_for_again(tmp_path: Path) -> None:
    proc = Procedure.model_validate({
        "name": "set_note", "description": "set a note after a confirmation",
        "params": [{"name": "text", "schema": {"type": "string"}}],
        "steps": [{"id": "s1", "action": "confirm", "args": {"ok": {"$ask": "sure?"}}},
                  {"id": "s2", "action": "set_note", "args": {"text": {"$param": "text"}}}],
    })
    sent: list[dict[str, Any]] = []
    tools = {"confirm": lambda **kw: {"ok": True},
             "set_note": lambda **kw: sent.append(kw) or {"ok": True}}
    db = tmp_path / "p.db"
    with Memory(db, embedder=None) as mem:
        mem.put_procedure(proc)
        paused = mem.replay(proc.name, tools=tools, params={"text": f"password: {PASSWORD}"})
        assert paused.status == "paused"
    with Memory(db, embedder=None) as other:
        assert contains_marker(other.get_execution(paused.id).params)
        again = other.resume(paused.id, {"ask:s1:/ok": True}, tools=tools)
        assert again.status == "paused" and sent == []
        assert [n.key for n in again.needs] == ["param:text"]
        done = other.resume(paused.id, {"param:text": "buy milk"}, tools=tools)
        assert done.status == "succeeded" and sent == [{"text": "buy milk"}]


def test_contains_marker_looks_everywhere() -> None:
    assert contains_marker({"a": [1, {"b": "x [REDACTED:jwt] y"}]})
    assert contains_marker({"[REDACTED:keyed]": 1})
    assert not contains_marker({"a": [1, {"b": "[REDACTED"}], "c": None})


def test_a_derived_trace_id_is_the_hash_of_the_redacted_record() -> None:
    from procmem.formats.traceio import trace_id_for
    base = {"task": "log in", "steps": [{"action": "login", "args": {"password": "x"}}]}
    other = {"task": "log in", "steps": [{"action": "login", "args": {"password": "y"}}]}
    # two records that differ only in a secret get one id: the id does not depend on it
    assert trace_id_for(base) == trace_id_for(other)
    assert trace_id_for(base) != trace_id_for({**base, "task": "log out"})
