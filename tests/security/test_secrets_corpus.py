"""A corpus of 100+ secrets through every ingest path: none is stored, shown or logged.

Values are generated (seeded) in the shapes real credentials have: AWS access key
ids and secret keys, JWTs, bearer tokens, GitHub / OpenAI / Slack / Stripe /
Google keys, passwords and API keys in free text, in args and in tool outputs. Each
trace is imported in every importer format (procmem JSONL, OpenAI chat, OpenAI
Responses, Anthropic) through ``procmem import``, posted to REST ``POST /traces``
(the app factory, no server), and recorded with ``Memory.record``. Then: the
database file's bytes, ``show``/``export`` output, REST reads and the captured
logs hold none of the values. A procedure learned from traces whose login step
took a password replays with the password supplied at run time (environment),
and the execution stored holds a marker, not the password.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import string
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from procmem import Memory
from procmem.cli import main
from procmem.core.model import Trace
from procmem.formats.traceio import write_traces
from procmem.store import SQLiteStore
from test_importers import BUILDERS

ALNUM = string.ascii_letters + string.digits


def _rand(rng: random.Random, alphabet: str, n: int) -> str:
    """``n`` characters of ``alphabet`` with a character of each of its classes
    (digits, lower case, upper case), as generated keys have."""
    classes = [c for c in (string.digits, string.ascii_lowercase, string.ascii_uppercase)
               if any(ch in c for ch in alphabet)]
    while True:
        s = "".join(rng.choice(alphabet) for _ in range(n))
        if all(any(ch in c for ch in s) for c in classes):
            return s


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def corpus(seed: int = 12) -> list[tuple[str, str, str]]:
    """(kind, value, placement) triples; placement is task, args, output or keyed."""
    rng = random.Random(seed)
    up = string.ascii_uppercase + string.digits
    out: list[tuple[str, str]] = []
    out += [("aws_key", "AKIA" + _rand(rng, up, 16)) for _ in range(12)]
    out += [("aws_secret", _rand(rng, ALNUM + "/+", 40)) for _ in range(10)]
    out += [("jwt", f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}."
                    f"{_b64({'sub': _rand(rng, ALNUM, 8), 'iat': rng.randrange(10**9)})}."
                    f"{_rand(rng, ALNUM + '-_', 43)}") for _ in range(12)]
    out += [("bearer", _rand(rng, ALNUM + "-._", 32)) for _ in range(12)]
    out += [("github", "ghp_" + _rand(rng, ALNUM, 36)) for _ in range(8)]
    out += [("openai", "sk-proj-" + _rand(rng, ALNUM, 40)) for _ in range(8)]
    out += [("slack", f"xoxb-{rng.randrange(10**11, 10**12)}-{rng.randrange(10**12, 10**13)}-"
                      + _rand(rng, ALNUM, 24)) for _ in range(6)]
    out += [("stripe", "sk_live_" + _rand(rng, ALNUM, 24)) for _ in range(6)]
    out += [("google", "AIza" + _rand(rng, ALNUM + "-_", 35)) for _ in range(6)]
    out += [("password", _rand(rng, ALNUM + "!#%&*", 12)) for _ in range(15)]
    out += [("api_key_text", _rand(rng, "0123456789abcdef", 32)) for _ in range(8)]
    places = ("task", "args", "output", "keyed")
    return [(k, v, places[i % 4]) for i, (k, v) in enumerate(out)]


def _phrase(kind: str, value: str) -> str:
    """How a value appears in free text."""
    if kind == "bearer":
        return f"Authorization: Bearer {value}"
    if kind == "password":
        return f"my password is {value}"
    if kind == "api_key_text":
        return f"api key: {value}"
    if kind == "aws_secret":
        return f"export AWS_SECRET_ACCESS_KEY={value}"
    return f"use {value} for it"


def trace_for(i: int, kind: str, value: str, place: str) -> Trace:
    task = f"Cancel order #W{1000000 + i} because no longer needed."
    args: dict[str, Any] = {"order_id": f"#W{1000000 + i}", "reason": "no longer needed"}
    output = json.dumps({"order_id": f"#W{1000000 + i}", "status": "cancelled"})
    if place == "task":
        task = f"{task} Note: {_phrase(kind, value)}."
    elif place == "args":
        args["note"] = _phrase(kind, value)
    elif place == "output":
        output = json.dumps({"order_id": f"#W{1000000 + i}", "note": _phrase(kind, value)})
    else:
        args["api_token" if kind != "password" else "password"] = value
    return Trace(id=f"sec-{i}", task=task, outcome="success", steps=[
        {"action": "cancel_pending_order", "args": args, "output": output}])


CORPUS = corpus()
TRACES = [trace_for(i, k, v, p) for i, (k, v, p) in enumerate(CORPUS)]
VALUES = [v for _, v, _ in CORPUS]


def test_the_corpus_is_large_and_varied() -> None:
    assert len(set(VALUES)) == len(VALUES) >= 100
    assert {p for _, _, p in CORPUS} == {"task", "args", "output", "keyed"}


def _leaks(blob: bytes | str) -> list[str]:
    data = blob.encode("utf-8", "replace") if isinstance(blob, str) else blob
    return [v for v in VALUES if v.encode() in data]


def _write(fmt: str, path: Path) -> Path:
    if fmt == "procmem":
        write_traces(path, TRACES)
    else:
        path.write_text("".join(json.dumps(BUILDERS[fmt](t)) + "\n" for t in TRACES),
                        encoding="utf-8")
    return path


@pytest.mark.parametrize("fmt", ["procmem", "openai-chat", "openai-responses", "anthropic"])
def test_no_secret_reaches_the_file_show_export_or_logs(fmt: str, tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    db = tmp_path / "m.db"
    src = _write(fmt, tmp_path / f"in.{fmt}.jsonl")
    runner = CliRunner()
    res = runner.invoke(main, ["--db", str(db), "import", str(src), "--format", fmt,
                               "--learn", "--json"])
    assert res.exit_code == 0, res.output
    outputs = [res.output]
    with Memory(db, embedder=None) as mem:
        assert mem.store.count_traces() == len(TRACES)
        names = [p.name for p in mem.list_procedures(status=None)]
    assert names
    for name in names:
        for cmd in (["show", name], ["show", name, "--json"], ["export", name, "--format", "json"],
                    ["export", name, "--format", "markdown"]):
            r = runner.invoke(main, ["--db", str(db), *cmd])
            assert r.exit_code == 0, r.output
            outputs.append(r.output)
    r = runner.invoke(main, ["--db", str(db), "traces", "list", "--json"])
    outputs.append(r.output)
    with Memory(db, embedder=None) as mem:
        mem.store.close()
    files = [p for p in tmp_path.iterdir() if p.name.startswith("m.db")]
    assert not [leak for f in files for leak in _leaks(f.read_bytes())]
    assert not [leak for o in outputs for leak in _leaks(o)]
    assert not _leaks(caplog.text)


def test_mcp_tool_outputs_hold_no_secret(tmp_path: Path) -> None:
    """What an MCP client reads (search hits with their plans, each procedure, the tool
    list with every procedure's input schema) after learning the whole corpus."""
    import asyncio

    from mcp import Client

    from procmem.mcp.server import build_server

    with Memory(tmp_path / "mcp.db", embedder=None) as mem:
        mem.learn(TRACES)
        names = [p.name for p in mem.list_procedures(status=None)]
        assert names
        # the stored (redacted) tasks: a task the client sends is echoed in the plan
        tasks = [t.task for t in mem.list_traces(limit=20)]

        async def read_all() -> list[str]:
            out: list[str] = []
            async with Client(build_server(mem), mode="legacy") as c:
                tools = await c.list_tools()
                out.append(json.dumps([t.model_dump(mode="json") for t in tools.tools]))
                for task in tasks:
                    hit = await c.call_tool("search_procedures", {"task": task})
                    out.append(json.dumps(hit.structured_content))
                for name in names:
                    got = await c.call_tool("get_procedure", {"name": name})
                    assert not got.is_error
                    out.append(json.dumps(got.structured_content))
            return out

        outputs = asyncio.run(read_all())
    assert len(outputs) == 1 + 20 + len(names)
    assert not [leak for o in outputs for leak in _leaks(o)]


def test_rest_and_recorder_paths_store_no_secret(tmp_path: Path) -> None:
    from keyed import rest_client

    db = tmp_path / "r.db"
    with Memory(db, embedder=None) as mem:
        client = rest_client(mem)
        body = [t.model_dump(mode="json") for t in TRACES[:60]]
        res = client.post("/traces", json=body)
        assert res.status_code in (200, 201), res.text
        for t in TRACES[60:]:  # the recorder path, with its own redaction switched off
            with mem.record(t.task, redact_secrets=False) as rec:
                rec.add_step(t.steps[0].action, t.steps[0].args, output=t.steps[0].output)
        reads = [client.get("/traces", params={"limit": 500}).text]
        mem.learn()
        reads += [client.get("/procedures").text]
        reads += [client.get(f"/procedures/{p.name}").text for p in mem.list_procedures()]
    assert not [leak for r in reads for leak in _leaks(r)]
    files = [p for p in tmp_path.iterdir() if p.name.startswith("r.db")]
    assert not [leak for f in files for leak in _leaks(f.read_bytes())]


def _login_traces() -> list[Trace]:
    rng = random.Random(5)
    out = []
    for i in range(3):
        pw = _rand(rng, ALNUM, 14)
        out.append(Trace(id=f"login-{i}", task=f"log in as ann and cancel order #W{2000000 + i}",
                         outcome="success", steps=[
                             {"action": "login", "args": {"user": "ann", "password": pw},
                              "output": json.dumps({"ok": True})},
                             {"action": "cancel_pending_order",
                              "args": {"order_id": f"#W{2000000 + i}"}, "output": "{}"}]))
    return out


def test_a_procedure_that_needs_a_secret_replays_with_it_supplied_at_run_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    traces = _login_traces()
    db = tmp_path / "s.db"
    run_time_password = "Run-Time-Pw-" + _rand(random.Random(9), ALNUM, 12)
    seen: list[dict[str, Any]] = []
    tools = {"login": lambda **kw: seen.append(kw) or json.dumps({"ok": True}),
             "cancel_pending_order": lambda **kw: json.dumps({"status": "cancelled"})}
    with Memory(db, embedder=None) as mem:
        mem.learn(traces)
        (proc,) = mem.list_procedures()
        secret = [p for p in proc.params if p.schema_.get("writeOnly")]
        assert [p.name for p in secret] == ["password"]
        assert proc.steps[0].args["password"] == {"$param": "password"}
        monkeypatch.setenv("PROCMEM_SECRET_PASSWORD", run_time_password)
        ex = mem.replay(proc.name, tools=tools, task="log in as ann and cancel order #W2000009")
        assert ex.status == "succeeded", ex
        assert seen[-1]["password"] == run_time_password
        stored = mem.get_execution(ex.id)
        assert stored.params["password"] == "[REDACTED:secret_param]"
        assert run_time_password not in stored.model_dump_json()
        # without a provider value the run pauses on the secret (it never sends a marker)
        monkeypatch.delenv("PROCMEM_SECRET_PASSWORD")
        paused = mem.replay(proc.name, tools=tools, task="log in as ann and cancel order #W2000010")
        assert paused.status == "paused"
        assert [n.name for n in paused.needs] == ["password"]
        done = mem.resume(paused.id, {"param:password": run_time_password}, tools=tools)
        assert done.status == "succeeded"
        assert run_time_password not in mem.get_execution(done.id).model_dump_json()
    data = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("s.db"))
    assert run_time_password.encode() not in data
    assert not [t for t in traces if t.steps[0].args["password"].encode() in data]


def test_procmem_redact_scrubs_a_store_written_without_redaction(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with Memory(db, embedder=None) as mem:
        if not isinstance(mem.store, SQLiteStore):  # PostgreSQL: tests/test_store_postgres.py
            pytest.skip("reads the SQLite file's bytes (and its WAL) for leftover secrets")
        mem.store.put_traces(TRACES)  # below Memory: as an old store would hold them
    runner = CliRunner()
    dry = runner.invoke(main, ["--db", str(db), "redact", "--dry-run", "--json"])
    assert dry.exit_code == 0, dry.output
    report = json.loads(dry.output)
    assert report["dry_run"] and report["changed"]["traces"] == len(TRACES)
    assert _leaks(db.read_bytes()) or _leaks((tmp_path / "old.db-wal").read_bytes())
    real = runner.invoke(main, ["--db", str(db), "redact", "--json"])
    assert json.loads(real.output)["changed"] == report["changed"]
    assert not _leaks(report.__repr__()) and not _leaks(real.output)
    files = [p for p in tmp_path.iterdir() if p.name.startswith("old.db")]
    assert not [leak for f in files for leak in _leaks(f.read_bytes())]
    again = runner.invoke(main, ["--db", str(db), "redact", "--json"])
    assert json.loads(again.output)["changed"] == {}
