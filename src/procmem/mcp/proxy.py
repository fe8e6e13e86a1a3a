"""The MCP proxy: procmem between an agent and an upstream MCP server.

``procmem proxy -- COMMAND ARGS...`` starts COMMAND as an MCP server over stdio
(the *upstream*), and serves MCP over its own stdio to the agent. It

* offers every upstream tool unchanged (name, title, description, input and
  output schema, annotations) and forwards each call, returning the upstream
  result unchanged (an upstream JSON-RPC error is re-raised as the same error);
* records every forwarded call as a step of a trace (one trace per *session
  task*, stored with :meth:`procmem.Memory.add_traces` through a
  :class:`~procmem.formats.record.Recorder`, secrets redacted);
* offers every active procedure whose actions are all upstream tools as a tool
  ``procedure__<name>`` (named by :func:`procmem.mcp.tools.tool_name`: at most
  64 characters of ``[A-Za-z0-9_-]``, a pure function of the procedure name),
  which replays the procedure *against the upstream server directly* with
  :meth:`procmem.Memory.areplay`;
* adds three control tools: ``procmem_task`` (name the task being recorded),
  ``procmem_finish`` (close the recording with an outcome, optionally learn)
  and ``procmem_resume`` (answer the needs of a paused replay).

Specs: MCP 2025-11-25, tools (https://modelcontextprotocol.io/specification/2025-11-25/server/tools)
and ``_meta`` (https://modelcontextprotocol.io/specification/2025-11-25/basic#meta).

Invariants:
    * A forwarded call is never changed: its arguments and ``_meta`` go upstream
      as given, its result comes back as upstream returned it.
    * One recording is open at a time. It starts at the first forwarded call
      (or at ``procmem_task``), with the task text given in the call's
      ``_meta["procmem/task"]`` if any, else ``"proxy session <UTC time>"``.
      A call whose ``_meta`` task differs from the open recording's task closes
      it (outcome ``unknown``) and starts a new one. ``procmem_finish`` closes
      it with the outcome given; shutdown closes it with outcome ``unknown``.
      A recording without steps is dropped, never stored.
    * Calls made by a replay (``procedure__*``, ``procmem_resume``) are stored as
      an execution (the episodic memory), never as trace steps; control tools
      are never recorded.
    * procmem errors become MCP error results (``isError``, text
      ``error[<code>]: <message>``, structured ``{"error": {"code", "message"}}``,
      as in procmem's MCP server); they never end the session. A replay that
      fails is a result with ``isError`` and the execution summary.
    * This module does not read the environment or print; the CLI
      (:mod:`procmem.cli.proxy`) passes in the upstream command and environment.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError

from .. import __version__
from ..core.errors import ProcmemError, UsageError
from ..core.model import Execution, Procedure, Trace, utcnow
from ..formats.paging import aread_all_cursor, read_all
from ..formats.record import Recorder
from ..memory import Memory
from ..services.execution_view import execution_view
from .tools import error_result, json_result, task_key, tool_name

__all__ = [
    "CONTROL_TOOLS",
    "PROCEDURE_PREFIX",
    "TASK_META_KEY",
    "Proxy",
    "UpstreamToolError",
    "execution_summary",
    "procedure_tool",
    "result_text",
    "serve_proxy",
]

PROCEDURE_PREFIX = "procedure__"
"""Prefix of the tools that replay a learned procedure."""
TASK_META_KEY = "procmem/task"
"""The ``_meta`` key of a ``tools/call`` request that names the task being recorded."""
CONTROL_TOOLS = ("procmem_task", "procmem_finish", "procmem_resume")
"""The proxy's own tools (an upstream tool of the same name wins)."""
_OUTCOMES = ("success", "failure", "unknown")


class UpstreamToolError(Exception):
    """An upstream tool answered with ``isError`` during a replay (the step run fails)."""


# --------------------------------------------------------------- pure helpers


def result_text(result: types.CallToolResult) -> str:
    """The text of a tool result, as recorded in a trace step's ``output``/``error``.

    Text blocks are joined by newlines; an embedded text resource gives its
    text; other blocks (images, audio, links, binary resources) give a short
    ``[type mime-type uri]`` marker, never their data. A result with no content
    but ``structuredContent`` gives that object as JSON text.
    """
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            parts.append(block.text)
        elif isinstance(block, types.EmbeddedResource) and isinstance(
                block.resource, types.TextResourceContents):
            parts.append(block.resource.text)
        else:
            data = block.model_dump(mode="json", by_alias=True, exclude_none=True)
            res: dict[str, Any] = data.get("resource") or {}
            bits = [str(data.get("type", "content")), data.get("mimeType") or res.get("mimeType"),
                    data.get("uri") or res.get("uri")]
            parts.append("[" + " ".join(str(b) for b in bits if b) + "]")
    if not parts and result.structured_content is not None:
        return json.dumps(result.structured_content, ensure_ascii=False)
    return "\n".join(parts)


def procedure_tool(proc: Procedure, name: str) -> types.Tool:
    """The MCP tool that replays ``proc`` upstream: its params as the input schema, plus ``task``.

    Each param is a property (its JSON Schema, description, up to three
    examples). No param is listed as ``required``: one missing from the
    arguments is bound from the ``task`` text (named as
    :func:`procmem.mcp.tools.task_key` says) or becomes a need, answered with
    ``procmem_resume``; the description of each says whether the procedure
    requires it. Unknown arguments are refused (``additionalProperties: false``).
    """
    props: dict[str, Any] = {}
    for p in proc.params:
        schema = dict(p.schema_)
        note = "required" if p.required else "optional"
        schema["description"] = f"{p.description} ({note})" if p.description else note
        if p.examples and "examples" not in schema:
            schema["examples"] = p.examples[:3]
        props[p.name] = schema
    props[task_key(proc)] = {
        "type": "string",
        "description": "The task in plain words; params not given are bound from it.",
    }
    actions = " -> ".join(proc.signature())
    about = proc.description.strip() or f"Procedure {proc.name}."
    description = (f"{about}\n\nReplays the learned procedure {proc.key} against the upstream "
                   f"server ({actions}). Returns the execution: status and each step run's "
                   "action, args and output (step_runs); if it pauses on needs, answer them with "
                   "procmem_resume.")
    return types.Tool(name=name, title=f"procedure {proc.name}", description=description,
                      input_schema={"type": "object", "properties": props,
                                    "additionalProperties": False})


def execution_summary(ex: Execution) -> dict[str, Any]:
    """The JSON result of a replay tool: the one execution shape
    (:func:`procmem.services.execution_view.execution_view`: ``id``, ``status``, ``params``,
    ``step_runs``, ``needs``, ``error``, ...), plus ``resume`` (how to answer) when paused."""
    out = execution_view(ex)
    if ex.status == "paused":
        out["resume"] = ("call procmem_resume with this execution_id and answers "
                         "{need key: value} for the needs listed")
    return out


def _execution_result(ex: Execution) -> types.CallToolResult:
    result = json_result(execution_summary(ex))
    result.is_error = ex.status == "failed"
    return result


_CONTROL_SCHEMAS: dict[str, tuple[str, dict[str, Any]]] = {
    "procmem_task": (
        "Name the task the following tool calls do (procmem records them as one trace). "
        "Starts a recording if none is open, else renames the open one.",
        {"type": "object", "required": ["task"],
         "properties": {"task": {"type": "string", "minLength": 1,
                                 "description": "The task in plain words, with its values."}}}),
    "procmem_finish": (
        "Close the open recording with an outcome; procmem stores it as a trace "
        "(learn=true also learns procedures from the stored traces).",
        {"type": "object", "properties": {
            "outcome": {"type": "string", "enum": list(_OUTCOMES), "default": "success"},
            "reward": {"type": "number", "minimum": 0, "maximum": 1},
            "learn": {"type": "boolean", "default": False}}}),
    "procmem_resume": (
        "Continue a paused procedure replay with answers to its needs "
        "(keys as listed in the needs, e.g. 'param:path' or 'ask:s1:/entities').",
        {"type": "object", "required": ["execution_id", "answers"], "properties": {
            "execution_id": {"type": "string"},
            "answers": {"type": "object", "description": "Values by need key."}}}),
}


# --------------------------------------------------------------------- proxy


class Proxy:
    """The proxy's state: the upstream session, its tools, and the open recording.

    Args:
        memory: Where traces are stored and procedures come from.
        upstream: An initialized client session to the upstream server.
        source: Stored on every trace (``Trace.source``).
        metadata: Stored on every trace (e.g. the upstream server's name).
        redact_secrets: Redact secrets from recorded traces (see :func:`formats.record.redact`).
    """

    def __init__(self, memory: Memory, upstream: ClientSession, *, source: str = "mcp-proxy",
                 metadata: dict[str, Any] | None = None, redact_secrets: bool = True) -> None:
        self.memory, self.upstream, self.source = memory, upstream, source
        self.metadata, self.redact_secrets = dict(metadata or {}), redact_secrets
        self._tools: list[types.Tool] | None = None
        self._recorder: Recorder | None = None
        self._steps = 0
        self._offered: set[str] = set()

    # ---------------------------------------------------------------- tools

    async def upstream_tools(self, *, refresh: bool = False) -> list[types.Tool]:
        """The upstream server's tools (every page), cached until ``refresh``."""
        if self._tools is None or refresh:
            async def fetch(cursor: str | None) -> tuple[list[types.Tool], str | None]:
                page = await self.upstream.list_tools(
                    params=types.PaginatedRequestParams(cursor=cursor) if cursor else None)
                return page.tools, page.next_cursor
            self._tools = await aread_all_cursor(fetch)
        return self._tools

    def tools_changed(self) -> None:
        """Forget the cached upstream tools (upstream sent ``notifications/tools/list_changed``)."""
        self._tools = None

    def _procedures(self, upstream: set[str]) -> dict[str, Procedure]:
        """Replayable procedures by tool name: active, every action an upstream tool."""
        procs = read_all(lambda limit, offset: self.memory.list_procedures(
            status="active", limit=limit, offset=offset))
        ok = [p for p in procs if p.steps and all(a in upstream for a in p.signature())]
        named = {tool_name(p.name, prefix=PROCEDURE_PREFIX): p for p in ok}
        return {name: p for name, p in named.items() if name not in upstream}

    async def list_tools(self) -> list[types.Tool]:
        """Upstream tools, then procedure tools, then the control tools not shadowed."""
        tools = list(await self.upstream_tools())
        names = {t.name for t in tools}
        procs = self._procedures(names)
        tools += [procedure_tool(p, name) for name, p in procs.items()]
        tools += [types.Tool(name=n, description=d, input_schema=s)
                  for n, (d, s) in _CONTROL_SCHEMAS.items() if n not in names]
        self._offered = set(procs)
        return tools

    # ------------------------------------------------------------ recording

    def _open(self, task: str) -> Recorder:
        rec = self.memory.record(task, source=self.source, metadata=self.metadata,
                                 redact_secrets=self.redact_secrets)
        rec.__enter__()
        self._recorder, self._steps = rec, 0
        return rec

    def finish(self, outcome: str = "unknown", reward: float | None = None) -> Trace | None:
        """Close the open recording and store its trace; ``None`` when none or empty.

        Raises:
            UsageError: ``outcome`` or ``reward`` is invalid (the recording stays open).
            ProcmemError: The store failed.
        """
        rec = self._recorder
        if rec is None:
            return None
        rec.outcome = outcome  # type: ignore[assignment]  # validated by the setter
        rec.reward = reward
        self._recorder = None
        if self._steps == 0:
            return None
        rec.__exit__(None, None, None)
        return rec.trace

    def _recorder_for(self, meta: Mapping[str, Any] | None) -> Recorder:
        hint = meta.get(TASK_META_KEY) if meta else None
        task = hint.strip() if isinstance(hint, str) and hint.strip() else None
        rec = self._recorder
        if rec is not None and task is not None and task != rec.task:
            self.finish("unknown")
            rec = None
        if rec is None:
            rec = self._open(task or
                             f"proxy session {utcnow().isoformat(timespec='seconds')}")
        return rec

    # ---------------------------------------------------------------- calls

    async def forward(self, name: str, arguments: dict[str, Any] | None,
                      meta: Mapping[str, Any] | None = None) -> types.CallToolResult:
        """Call upstream tool ``name`` and record the call; the result is returned unchanged.

        Raises:
            MCPError: Upstream answered with a JSON-RPC error (recorded as a failed step).
        """
        rec = self._recorder_for(meta)
        start = time.perf_counter()
        try:
            result = await self.upstream.call_tool(name, arguments, meta=dict(meta) if meta
                                                   else None)  # type: ignore[arg-type]
        except Exception as err:
            rec.add_step(name, dict(arguments or {}), None, f"{type(err).__name__}: {err}",
                         _ms_since(start))
            self._steps += 1
            raise
        text = result_text(result)
        rec.add_step(name, dict(arguments or {}), None if result.is_error else text,
                     text if result.is_error else None, _ms_since(start))
        self._steps += 1
        return result

    def _replay_tools(self, names: Sequence[str]) -> dict[str, Callable[..., Awaitable[str]]]:
        def make(tool: str) -> Callable[..., Awaitable[str]]:
            async def call(**args: Any) -> str:
                result = await self.upstream.call_tool(tool, args)
                text = result_text(result)
                if result.is_error:
                    raise UpstreamToolError(text)
                return text
            return call
        return {n: make(n) for n in names}

    async def replay(self, proc: Procedure, arguments: dict[str, Any]) -> types.CallToolResult:
        """Replay ``proc`` against the upstream server with ``arguments`` (params + task)."""
        args = dict(arguments)
        task = args.pop(task_key(proc), None)
        if task is not None and not isinstance(task, str):
            raise UsageError(f"{task_key(proc)} must be a string, got {type(task).__name__}")
        tools = self._replay_tools([t.name for t in await self.upstream_tools()])
        ex = await self.memory.areplay(proc.name, tools=tools, task=task, params=args)
        return _execution_result(ex)

    async def resume(self, arguments: dict[str, Any]) -> types.CallToolResult:
        """``procmem_resume``: continue a paused execution with answers."""
        execution_id, answers = arguments.get("execution_id"), arguments.get("answers", {})
        if not isinstance(execution_id, str) or not execution_id:
            raise UsageError("procmem_resume needs an execution_id (a string)")
        if not isinstance(answers, dict):
            raise UsageError(f"answers must be an object, got {type(answers).__name__}")
        tools = self._replay_tools([t.name for t in await self.upstream_tools()])
        ex = await self.memory.aresume(execution_id, answers, tools=tools)
        return _execution_result(ex)

    def _set_task(self, arguments: dict[str, Any]) -> types.CallToolResult:
        task = arguments.get("task")
        if not isinstance(task, str) or not task.strip():
            raise UsageError("procmem_task needs a non-empty task (a string)")
        rec = self._recorder or self._open(task.strip())
        rec.task = task.strip()
        return json_result({"task": rec.task, "steps": self._steps})

    def _finish_tool(self, arguments: dict[str, Any]) -> dict[str, Any]:
        if self._recorder is None:
            raise UsageError("no recording is open: it starts with the first forwarded tool "
                             "call or with procmem_task")
        steps = self._steps
        trace = self.finish(arguments.get("outcome", "success"), arguments.get("reward"))
        out: dict[str, Any] = {"trace_id": trace.id if trace else None,
                               "task": trace.task if trace else None, "steps": steps,
                               "outcome": trace.outcome if trace else None}
        if arguments.get("learn"):
            out["learned"] = asdict(self.memory.learn())
        return out

    async def call_tool(self, name: str, arguments: dict[str, Any] | None,
                        meta: Mapping[str, Any] | None = None,
                        notify: Callable[[], Awaitable[None]] | None = None
                        ) -> types.CallToolResult:
        """Handle one ``tools/call``: forward, replay, or a control tool.

        Args:
            name: The tool name.
            arguments: The call's arguments.
            meta: The request's ``_meta`` (its ``procmem/task`` names the task).
            notify: Sends ``notifications/tools/list_changed`` (after a learn that
                changed the procedure tools).

        Raises:
            MCPError: An upstream JSON-RPC error, re-raised unchanged.
        """
        args = dict(arguments or {})
        upstream = {t.name for t in await self.upstream_tools()}
        if name in upstream:
            return await self.forward(name, arguments, meta)
        try:
            if name == "procmem_task":
                return self._set_task(args)
            if name == "procmem_finish":
                out = self._finish_tool(args)
                before = set(self._offered)
                if args.get("learn") and notify is not None:
                    await self.list_tools()
                    if self._offered != before:
                        try:
                            await notify()
                            out["tools_changed"] = True
                        except MCPError as err:  # the trace is stored: say so, and why
                            out["tools_changed"] = f"not notified: {err}"
                return json_result(out)
            if name == "procmem_resume":
                return await self.resume(args)
            if name.startswith(PROCEDURE_PREFIX):
                proc = self._procedures(upstream).get(name)
                if proc is not None:
                    return await self.replay(proc, args)
            raise UsageError(f"unknown tool {name!r}: not an upstream tool, a procedure tool "
                             "or a procmem control tool (list the tools again)")
        except ProcmemError as err:
            return error_result(err.code, str(err))

    def build_server(self, name: str = "procmem-proxy") -> Server[Any]:
        """A low-level MCP server whose tools are this proxy's."""

        async def list_tools(ctx: ServerRequestContext[Any],
                             params: types.PaginatedRequestParams | None
                             ) -> types.ListToolsResult:
            return types.ListToolsResult(tools=await self.list_tools())

        async def call_tool(ctx: ServerRequestContext[Any],
                            params: types.CallToolRequestParams) -> types.CallToolResult:
            return await self.call_tool(params.name, params.arguments, params.meta,
                                        notify=ctx.session.send_tool_list_changed)

        return Server(name, version=__version__, on_list_tools=list_tools,
                      on_call_tool=call_tool,
                      instructions="Tools of the upstream MCP server, recorded by procmem; "
                                   "procedure__* tools replay learned procedures.")


def _ms_since(start: float) -> float:
    return max(0.0, (time.perf_counter() - start) * 1000.0)


async def serve_proxy(memory: Memory, command: str, args: Sequence[str] = (), *,
                      env: Mapping[str, str] | None = None, cwd: str | Path | None = None,
                      redact_secrets: bool = True, init_timeout_s: float = 60.0
                      ) -> Trace | None:
    """Run the proxy over this process's stdio until the client disconnects.

    Starts ``command args`` as the upstream MCP server (stdio), initializes a
    client session, serves the agent, and at shutdown closes the open
    recording (outcome ``unknown``) before stopping the upstream process.

    Args:
        memory: Where traces go and procedures come from.
        command: The upstream server's executable, e.g. ``"npx"`` or ``"node"``.
        args: Its arguments.
        env: The upstream process's environment (merged over the MCP SDK's safe
            default: HOME, PATH, ...).
        cwd: Its working directory.
        redact_secrets: Redact secrets from recorded traces.
        init_timeout_s: How long the upstream may take to answer ``initialize``.

    Returns:
        The trace stored at shutdown, if one was open.

    Raises:
        UsageError: The upstream command cannot be started, or it does not
            answer the MCP handshake.
    """
    try:
        return await _serve(memory, command, args, env=env, cwd=cwd,
                            redact_secrets=redact_secrets, init_timeout_s=init_timeout_s)
    except BaseExceptionGroup as group:  # task groups wrap what is raised inside them
        leaves = _leaves(group)
        if len(leaves) == 1 and isinstance(leaves[0], ProcmemError):
            raise leaves[0] from group
        raise


def _leaves(group: BaseExceptionGroup[Any]) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out


async def _serve(memory: Memory, command: str, args: Sequence[str], *,
                 env: Mapping[str, str] | None, cwd: str | Path | None,
                 redact_secrets: bool, init_timeout_s: float) -> Trace | None:
    params = StdioServerParameters(command=command, args=list(args),
                                   env=dict(env) if env is not None else None, cwd=cwd)
    stale: list[Proxy] = []

    async def on_upstream_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            for p in stale:
                p.tools_changed()

    async with AsyncExitStack() as stack:
        try:
            read, write = await stack.enter_async_context(stdio_client(params))
            upstream = await stack.enter_async_context(
                ClientSession(read, write, message_handler=on_upstream_message))
            with anyio.fail_after(init_timeout_s):
                init = await upstream.initialize()
        except (OSError, MCPError, TimeoutError) as err:
            why = f"no MCP handshake within {init_timeout_s:g} s" \
                if isinstance(err, TimeoutError) else f"{type(err).__name__}: {err}"
            raise UsageError(f"upstream MCP server {command!r} failed to start: {why}") from err
        info = init.server_info
        proxy = Proxy(memory, upstream, source=f"mcp-proxy:{info.name}",
                      metadata={"upstream": {"name": info.name, "version": info.version,
                                             "command": Path(command).name}},
                      redact_secrets=redact_secrets)
        stale.append(proxy)
        await proxy.upstream_tools()
        server = proxy.build_server()
        try:
            async with stdio_server() as (read_in, write_out):
                await server.run(read_in, write_out, server.create_initialization_options(
                    NotificationOptions(tools_changed=True)))
        finally:
            trace = proxy.finish("unknown")
    return trace
