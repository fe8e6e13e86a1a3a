"""Data stays data: reserved-key values round-trip through every entry path.

A trace whose args hold objects with a reserved key (``$step``, ``$param``, ``$ask``,
``$literal``, at the top of an arg value and nested), and whose outputs hold such
objects too, enters procmem by each way a trace can enter: a trace file, REST, MCP
recording, the recorder, the MCP proxy (a Python upstream, no node), and each
transcript importer. It is learned into a procedure and replayed against Python
tools: each tool receives exactly the demonstrated objects (byte-identical JSON),
and an output object that looks like a reference is passed on as data, never
resolved.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mcp import Client
from rich.console import Console

from keyed import rest_client
from procmem.cli.render import procedure_view
from procmem.core.model import Trace, TraceStep
from procmem.core.template import bind, param, references
from procmem.formats.export import to_markdown
from procmem.formats.importers import import_transcripts
from procmem.induction.induce import CorpusStats, induce
from procmem.mcp.server import build_server
from procmem.memory import Memory
from test_importers import BUILDERS

NAME = "lookup-then-charge"
REF = {"$step": "s1", "path": "/card"}
PAYLOAD: dict[str, Any] = {
    "ref": REF,
    "param": {"$param": "x"},
    "ask": {"$ask": "?"},
    "literal": {"$literal": 1},
    "nested": {"deep": [{"$step": "s1", "path": ""}, {"$ask": "which", "from": REF}],
               "obj": {"inner": {"$param": "order_id"}, "$other": True}},
}
ORDERS = ["#W1001", "#W2002"]


def lookup_output(order: str) -> str:
    """What ``lookup`` returns: JSON text whose objects look like references."""
    n = order[2:]
    return json.dumps({"card": f"card-{n}", "echo": REF, "hold": {"$param": f"order_{n}"}})


def demo_steps(order: str) -> list[tuple[str, dict[str, Any], str]]:
    """(action, args, output) of one demonstration."""
    n = order[2:]
    return [("lookup", {"order_id": order}, lookup_output(order)),
            ("charge", {"order_id": order, "payload": PAYLOAD, "meta": REF,
                        "hold": {"$param": f"order_{n}"}},
             json.dumps({"charged": {"$step": "s2", "path": "/x"}}))]


def demo_trace(order: str) -> Trace:
    return Trace(id=f"demo-{order[2:]}", task=f"charge order {order}", outcome="success",
                 steps=[TraceStep(action=a, args=args, output=out)
                        for a, args, out in demo_steps(order)])


def _no_reference(pointer: str, node: dict[str, Any]) -> tuple[Any, str]:
    raise AssertionError(f"{node!r} at {pointer!r} was read as a reference")


# ------------------------------------------------------------------ entry paths


def via_file(mem: Memory, tmp_path: Path) -> None:
    path = tmp_path / "traces.jsonl"
    path.write_text("".join(demo_trace(o).model_dump_json() + "\n" for o in ORDERS))
    assert mem.import_traces(path).stored == 2


def via_rest(mem: Memory, tmp_path: Path) -> None:


    with rest_client(mem) as client:
        body = [json.loads(demo_trace(o).model_dump_json()) for o in ORDERS]
        assert client.post("/traces", json=body).json()["stored"] == 2


def via_recorder(mem: Memory, tmp_path: Path) -> None:
    for order in ORDERS:
        outputs = {a: out for a, _, out in demo_steps(order)}
        tools: dict[str, Callable[..., Any]] = {
            "lookup": lambda order_id, _o=outputs: _o["lookup"],
            "charge": lambda _o=outputs, **kw: _o["charge"],
        }
        with mem.record(f"charge order {order}") as rec:
            wrapped = rec.wrap_tools(tools)
            for action, args, _ in demo_steps(order):
                wrapped[action](**args)
            rec.outcome = "success"


def via_mcp_recording(mem: Memory, tmp_path: Path) -> None:
    async def record() -> None:
        async with Client(build_server(mem), mode="legacy") as client:
            for order in ORDERS:
                started = await client.call_tool("start_recording",
                                                 {"task": f"charge order {order}"})
                assert isinstance(started.structured_content, dict)
                rid = started.structured_content["recording_id"]
                for action, args, output in demo_steps(order):
                    r = await client.call_tool("record_step", {
                        "recording_id": rid, "action": action, "args": args, "output": output})
                    assert not r.is_error, r.content
                r = await client.call_tool("finish_recording",
                                           {"recording_id": rid, "learn": False})
                assert not r.is_error, r.content

    anyio.run(record)


TOY = '''
import json
from typing import Any
from mcp.server.mcpserver import MCPServer

app = MCPServer("toy-pay")
OUTPUTS = json.loads(%r)


@app.tool()
def lookup(order_id: str) -> str:
    """Look an order up."""
    return OUTPUTS[order_id]["lookup"]


@app.tool()
def charge(order_id: str, payload: dict[str, Any], meta: dict[str, Any],
           hold: dict[str, Any]) -> str:
    """Charge an order."""
    return OUTPUTS[order_id]["charge"]


app.run()
'''


def via_proxy(mem: Memory, tmp_path: Path) -> None:
    from test_mcp_proxy import proxy

    outputs = {o: {a: out for a, _, out in demo_steps(o)} for o in ORDERS}
    script = tmp_path / "toy_pay.py"
    script.write_text(TOY % json.dumps(outputs))
    db = Path(mem.store.location)

    async def record() -> None:
        with anyio.fail_after(120):
            async with proxy(db, [sys.executable, str(script)]) as session:
                for order in ORDERS:
                    await session.call_tool("procmem_task", {"task": f"charge order {order}"})
                    for action, args, _ in demo_steps(order):
                        r = await session.call_tool(action, args)
                        assert not r.is_error, r.content
                    r = await session.call_tool("procmem_finish", {"outcome": "success"})
                    assert not r.is_error, r.content

    anyio.run(record)


def via_importer(fmt: str) -> Callable[[Memory, Path], None]:
    def ingest(mem: Memory, tmp_path: Path) -> None:
        path = tmp_path / f"{fmt}.jsonl"
        path.write_text("".join(json.dumps(BUILDERS[fmt](demo_trace(o))) + "\n"
                                for o in ORDERS))
        traces, problems = import_transcripts(path, fmt)
        assert not problems
        assert mem.add_traces(traces) == 2

    return ingest


ENTRY_PATHS: dict[str, Callable[[Memory, Path], None]] = {
    "file": via_file,
    "rest": via_rest,
    "recorder": via_recorder,
    "mcp-recording": via_mcp_recording,
    "proxy": via_proxy,
    **{f"import-{fmt}": via_importer(fmt) for fmt in BUILDERS},
}


# the proxy runs as a process of its own: the server lane (see tests/conftest.py)
@pytest.mark.parametrize("path", [pytest.param(p, marks=pytest.mark.server) if p == "proxy" else p
                                  for p in sorted(ENTRY_PATHS)])
def test_reserved_key_values_round_trip_through_every_entry_path(path: str,
                                                                  tmp_path: Path) -> None:
    db = tmp_path / "memory.db"
    with Memory(db, embedder=None) as mem:
        ENTRY_PATHS[path](mem, tmp_path)
    with Memory(db, embedder=None, min_constant=2) as mem:  # two demonstrations agree
        stored = mem.list_traces()
        assert len(stored) == 2
        for trace in stored:  # stored as the raw data
            charge = trace.successful_steps()[-1]
            assert charge.args["payload"] == PAYLOAD and charge.args["meta"] == REF
        report = mem.learn()
        assert report.created == [NAME] and report.failed_groups == []
        proc = mem.get_procedure(NAME)
        payload = proc.steps[1].args["payload"]
        assert {"$literal" in node for _, node in references(payload)} == {True}  # escaped
        assert bind(payload, _no_reference)[0] == PAYLOAD
        assert proc.steps[1].args["meta"] == {"$literal": REF}
        assert proc.steps[1].args["hold"] == {"$step": "s1", "path": "/hold"}  # data flow

        received: list[dict[str, Any]] = []
        new = "#W3003"
        live = json.loads(lookup_output(new))

        def lookup(order_id: str) -> str:
            return lookup_output(order_id)

        def charge(**kwargs: Any) -> str:
            received.append(kwargs)
            return json.dumps({"charged": {"$step": "s2", "path": "/x"}})

        ex = mem.replay(NAME, tools={"lookup": lookup, "charge": charge},
                        task=f"charge order {new}")
        assert ex.status == "succeeded", ex.error
        [sent] = received
        want = {"order_id": new, "payload": PAYLOAD, "meta": REF, "hold": live["hold"]}
        assert json.dumps(sent, sort_keys=True) == json.dumps(want, sort_keys=True)
        assert sent["meta"] != live["card"]  # the card number never flows in as a "reference"
        assert ex.step_runs[1].output == json.dumps({"charged": {"$step": "s2", "path": "/x"}})


def test_args_with_a_reserved_key_at_their_top_are_one_literal() -> None:
    """Tool arguments named like template keys: the whole args object is data."""
    steps = [TraceStep(action="raw", args={"$param": "x", "n": 1}, output="ok")]
    mem = Memory(":memory:", embedder=None, min_constant=2)
    mem.learn([Trace(task="send raw", outcome="success", steps=steps) for _ in range(2)])
    proc = mem.get_procedure("raw")
    assert proc.steps[0].args == {"$literal": {"$param": "x", "n": 1}}
    got: list[dict[str, Any]] = []
    ex = mem.replay("raw", tools={"raw": lambda **kw: got.append(kw) or "ok"}, task="send raw")
    assert ex.status == "succeeded" and got == [{"$param": "x", "n": 1}]
    # shown as the data it is, not as a reference
    console = Console(width=200, record=True)
    console.print(procedure_view(proc))
    assert 'args = {"$param": "x", "n": 1}' in console.export_text()
    assert '- the whole arguments object: `{"$param": "x", "n": 1}`' in to_markdown(proc)


def test_a_repair_keeps_reserved_key_data_of_the_recovery_as_literals() -> None:
    """Repairs build templates from a recovery trace's args too (procmem.learning.candidates)."""
    from procmem.core.model import Execution
    from procmem.learning.candidates import repair
    from test_candidates import proc, run
    from test_candidates import st as tstep

    p = proc("p", [tstep("s1", "lookup", q=param("q")), tstep("s2", "old_fix", v=1)], ["q"])
    ex = Execution(id="ex_p", procedure="p", version=1, params={"q": "abc"}, status="paused",
                   task="look up abc", step_runs=[run(0, p.steps[0], {"q": "abc"}, '{"v": 7}')])
    data = {"$step": "s9", "path": "/card"}
    recovery = Trace(task="t", steps=[
        TraceStep(action="new_fix", args={"q": "abc", "data": data, "deep": {"x": [data]}}),
        TraceStep(action="raw", args={"$param": "q", "v": 7})])
    cand = repair(p, ex, recovery)
    assert cand is not None
    fix, raw = cand.procedure.steps[1:]
    assert fix.args == {"q": {"$param": "q"}, "data": {"$literal": data},
                        "deep": {"x": {"$literal": [data]}}}
    assert raw.args == {"$literal": {"$param": "q", "v": 7}}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["$param", "$step", "$ask", "$literal", "$x", "path", "from", "a", ""]),
        inner, max_size=3),
    max_leaves=8)


@settings(max_examples=150, deadline=None)
@given(args=st.dictionaries(st.sampled_from(["$param", "$step", "a", "b/c", "~"]), json_values,
                            max_size=4))
def test_induced_literals_bind_back_to_the_demonstrated_args(args: dict[str, Any]) -> None:
    """Whatever JSON a demonstration sends (``$`` keys anywhere), the induced template binds,
    without resolving anything, to exactly that JSON."""
    demos = [Trace(task="-", outcome="success", steps=[TraceStep(action="act", args=args)])
             for _ in range(2)]
    step = induce(demos, corpus=CorpusStats.from_traces(demos, min_constant=2)).steps[0]
    assert bind(step.args, _no_reference)[0] == args
