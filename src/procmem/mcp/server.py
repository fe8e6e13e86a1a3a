"""procmem's MCP server: search, recall, record and run procedures over MCP.

Built on the official ``mcp`` SDK's low-level :class:`mcp.server.Server`
(tools are dynamic and their input schemas come from procedure params, which
the decorator-based ``MCPServer`` cannot express). :func:`build_server` makes
one; :func:`serve_stdio` and :func:`serve_http` run it (``procmem mcp``).

Tools (spec: https://modelcontextprotocol.io/specification/2025-11-25/server/tools):

* fixed: ``search_procedures`` (each hit with its ``plan`` for the task: the
  values a replay would send and what would pause it, :mod:`procmem.induction.planning`;
  with ``multi``, a ``task_plan`` too: one procedure per request, :mod:`services.multiplan`),
  ``get_procedure`` (JSON and a Markdown how-to
  from :func:`procmem.formats.export.to_markdown`), ``start_recording`` /
  ``record_step`` / ``finish_recording``, ``report_evidence``,
  ``continue_execution``;
* one tool per active procedure (:func:`procmem.mcp.tools.tool_name`), whose
  input schema is its params. Calling it starts an execution the *client*
  drives (:meth:`procmem.Memory.start`): the result names the next tool call
  to make with its bound args, or the needs to answer; ``continue_execution``
  takes that call's result (:meth:`procmem.Memory.advance`) and returns the
  next turn, until the execution ends.

Invariants:
    * All behaviour goes through :class:`procmem.Memory`; its calls run in worker
      threads (the event loop never blocks on the store), without a lock of the
      server's own: a ``Memory`` is safe to share between threads.
    * A tool never raises to the SDK: a :class:`~procmem.core.errors.ProcmemError`
      becomes an error result (``isError: true``, its ``code`` and message);
      any other exception is logged with its traceback and becomes an error
      result with code ``internal``. The server keeps serving.
    * The procedure tools follow the store's ``index_revision()``: it is read
      before every listing and after every tool call; when it moved, the
      server sends ``notifications/tools/list_changed`` (handshake-era
      clients, on the connection that made the request; the ``tools``
      capability declares ``listChanged``) and publishes a tools-changed event
      to ``subscriptions/listen`` streams (2026-07-28 clients). A handshake-era
      client on another connection learns of a change made elsewhere when it
      next lists tools.
    * Open recordings live in this server object (at most
      :data:`MAX_OPEN_RECORDINGS`); a trace is stored only by ``finish_recording``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from .. import __version__
from ..core.errors import MissingExtra, NotFound, ProcmemError, UsageError
from ..core.model import Hit, Procedure, new_id
from ..formats.export import to_markdown
from ..formats.paging import read_all
from ..formats.record import Recorder
from ..formats.serialize import error_of, report_record
from ..induction.planning import Plan
from ..memory import Memory
from .tools import (
    FIXED_TOOLS,
    ContinueArgs,
    FinishRecordingArgs,
    GetProcedureArgs,
    RecordStepArgs,
    ReportEvidenceArgs,
    SearchArgs,
    StartRecordingArgs,
    error_result,
    fixed_tools,
    hit_json,
    json_result,
    parse_args,
    procedure_tool,
    task_key,
    tool_name,
    turn_result,
)

try:
    import anyio
    import mcp_types as types
    from mcp.server import Server
    from mcp.server.context import ServerRequestContext
    from mcp.server.lowlevel.server import NotificationOptions
    from mcp.server.models import InitializationOptions
    from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ToolsListChanged
except ImportError as err:  # pragma: no cover - the mcp extra is installed in the test env
    raise MissingExtra("procmem's MCP server", "mcp") from err

__all__ = ["MAX_OPEN_RECORDINGS", "ProcedureRunner", "ProcmemServer", "ToolProvider",
           "build_server", "run", "serve_http", "serve_stdio"]

logger = logging.getLogger(__name__)

MAX_OPEN_RECORDINGS = 1000
"""Recordings open at once in one server; ``start_recording`` refuses beyond."""

INSTRUCTIONS = """\
procmem remembers how multi-step tasks were done (procedures learned from tool-call traces).
For a task: call search_procedures; call the top hit's tool with the task text (or its params);
make the tool call its result names (next_call) yourself and pass that call's result to
continue_execution; repeat until status is succeeded or failed, answering needs with
continue_execution(answers=...). When the tool can deduplicate requests, give it
next_call.idempotency_key: a call handed out again after an interruption has the same key.
Then report_evidence. To teach a new procedure, record your
calls with start_recording, record_step and finish_recording."""

T = TypeVar("T")


class ToolProvider(Protocol):
    """More tools served next to procmem's (e.g. the MCP proxy's upstream tools).

    ``list_tools`` is awaited on every ``tools/list`` and whenever a name that
    is not a fixed tool is called, so it should be cheap (cache upstream
    listings). On a name clash, fixed tools win over these, and these over
    procedure tools (use ``tool_prefix`` in :func:`build_server` to avoid it).
    """

    async def list_tools(self) -> list[types.Tool]:
        """The extra tools."""
        ...

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """Call one of them; a :class:`~core.errors.ProcmemError` becomes an error result."""
        ...


ProcedureRunner = Callable[[Procedure, str | None, dict[str, Any]],
                           Awaitable[types.CallToolResult]]
"""Runs a procedure tool call instead of the client-driven start:
``(current procedure version, task text or None, params) -> result``."""


@dataclass
class _Recording:
    recorder: Recorder
    steps: int = 0


class ProcmemServer(Server[Any]):
    """The low-level MCP server of one :class:`~procmem.Memory` (see the module docs).

    Build it with :func:`build_server`. Attributes: ``memory``; ``bus`` (the
    ``subscriptions/listen`` event bus).
    """

    def __init__(self, memory: Memory, *, extra_tools: ToolProvider | None = None,
                 run_procedure: ProcedureRunner | None = None, tool_prefix: str = "",
                 name: str = "procmem") -> None:
        self.memory = memory
        self.bus = InMemorySubscriptionBus()
        self._extra = extra_tools
        self._run_procedure = run_procedure
        self._prefix = tool_prefix
        self._recordings: dict[str, _Recording] = {}
        self._announced = memory.store.index_revision()
        self._listed: int | None = None
        self._tools: dict[str, types.Tool] = {}  # procedure tools by tool name
        self._by_tool: dict[str, str] = {}  # tool name -> procedure name
        self._fixed = fixed_tools()
        super().__init__(name, version=__version__, instructions=INSTRUCTIONS,
                         on_list_tools=self._list_tools, on_call_tool=self._call_tool,
                         on_subscriptions_listen=ListenHandler(self.bus),
                         get_tool_input_schema=self._input_schema)

    def create_initialization_options(
        self, notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        """As the SDK's, declaring ``tools.listChanged`` by default."""
        return super().create_initialization_options(
            notification_options or NotificationOptions(tools_changed=True),
            experimental_capabilities, extensions)

    # ------------------------------------------------------------ plumbing

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``fn`` in a worker thread."""
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))

    def procedure_tool_names(self) -> dict[str, str]:
        """Tool name -> procedure name, as of the last listing or call."""
        return dict(self._by_tool)

    def _scan(self) -> tuple[int, list[Procedure]]:
        revision = self.memory.store.index_revision()
        if revision == self._listed:
            return revision, []
        return revision, read_all(lambda limit, offset: self.memory.list_procedures(
            status="active", limit=limit, offset=offset))

    async def _refresh(self) -> None:
        """Rebuild the procedure tools if the store's index revision moved."""
        revision, procs = await self._run(self._scan)
        if revision == self._listed:
            return
        tools: dict[str, types.Tool] = {}
        by_tool: dict[str, str] = {}
        for proc in sorted(procs, key=lambda p: p.name):
            name = tool_name(proc.name, prefix=self._prefix)
            if name in by_tool:  # only a SHA-256 prefix collision can get here
                logger.warning("procedures %r and %r map to the same tool name %r; "
                               "serving the first", by_tool[name], proc.name, name)
                continue
            by_tool[name] = proc.name
            tools[name] = procedure_tool(proc, name)
        self._tools, self._by_tool, self._listed = tools, by_tool, revision

    async def _announce(self, ctx: ServerRequestContext[Any, Any]) -> None:
        """Send the list-changed notification if the index revision moved."""
        try:
            revision = await self._run(self.memory.store.index_revision)
        except ProcmemError:
            logger.warning("cannot read the index revision", exc_info=True)
            return
        if revision == self._announced:
            return
        self._announced = revision
        await self.bus.publish(ToolsListChanged())
        try:
            await ctx.session.send_tool_list_changed()
        except Exception:  # a closed or one-way channel must not fail the request
            logger.warning("could not send notifications/tools/list_changed", exc_info=True)

    def _input_schema(self, name: str) -> dict[str, Any] | None:
        tool = next((t for t in self._fixed if t.name == name), None) or self._tools.get(name)
        return tool.input_schema if tool else None

    async def _extra_tools(self) -> list[types.Tool]:
        return list(await self._extra.list_tools()) if self._extra is not None else []

    # ------------------------------------------------------------ handlers

    async def _list_tools(self, ctx: ServerRequestContext[Any, Any],
                          params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        await self._refresh()
        out: dict[str, types.Tool] = {t.name: t for t in self._fixed}
        for tool in [*await self._extra_tools(), *self._tools.values()]:
            if tool.name in out:
                logger.warning("tool %r is served already; another tool of that name is hidden",
                               tool.name)
                continue
            out[tool.name] = tool
        await self._announce(ctx)
        return types.ListToolsResult(tools=list(out.values()), ttl_ms=0)

    async def _call_tool(self, ctx: ServerRequestContext[Any, Any],
                         params: types.CallToolRequestParams) -> types.CallToolResult:
        try:
            result = await self._dispatch(params.name, dict(params.arguments or {}))
        except ProcmemError as err:
            result = error_result(*error_of(err))
        except Exception as err:  # a pydantic ValidationError is usage, anything else a bug
            logger.exception("tool %r failed", params.name)
            result = error_result(*error_of(err))
        await self._announce(ctx)
        return result

    async def _dispatch(self, name: str, args: dict[str, Any]) -> types.CallToolResult:
        if name in FIXED_TOOLS:
            handler = getattr(self, f"_tool_{name}")
            result: types.CallToolResult = await handler(parse_args(FIXED_TOOLS[name], name,
                                                                    args))
            return result
        if self._extra is not None and any(t.name == name for t in await self._extra_tools()):
            return await self._extra.call_tool(name, args)
        await self._refresh()
        procedure = self._by_tool.get(name)
        if procedure is None:
            raise NotFound("tool", name)
        return await self._call_procedure(name, procedure, args)

    async def _call_procedure(self, tool: str, name: str,
                              args: dict[str, Any]) -> types.CallToolResult:
        proc = await self._run(self.memory.get_procedure, name)
        task = args.pop(task_key(proc), None)
        if task is not None and not isinstance(task, str):
            raise UsageError(f"tool {tool!r}: {task_key(proc)} must be a string")
        if not proc.steps:
            text = to_markdown(proc)
            return json_result({"procedure": proc.name, "version": proc.version,
                                "status": "text_only", "tool": tool, "markdown": text,
                                "instruction": "This procedure has no replayable steps: "
                                               "follow the how-to yourself."}, text=text)
        if self._run_procedure is not None:
            return await self._run_procedure(proc, task, args)
        turn = await self._run(self.memory.start, name, task=task, params=args)
        return turn_result(turn, tool)

    # ------------------------------------------------------------ fixed tools

    async def _tool_search_procedures(self, a: SearchArgs) -> types.CallToolResult:
        hits = await self._run(self.memory.search, a.task, limit=a.limit, tags=a.tags,
                               namespace=a.namespace, confident_only=a.confident_only,
                               rerank=a.rerank)
        plans = await self._run(self._plans, a.task, hits)
        out: dict[str, Any] = {"task": a.task, "hits": [
            hit_json(i, h, tool_name(h.procedure.name, prefix=self._prefix), plan)
            for i, (h, plan) in enumerate(zip(hits, plans, strict=True), 1)]}
        if a.multi:  # one procedure per request (procmem.services.multiplan)
            out["task_plan"] = (await self._run(self.memory.plan_task, a.task)).to_json()
        return json_result(out)

    def _plans(self, task: str, hits: list[Hit]) -> list[Plan | str]:
        """Each hit's plan for ``task`` (no tool called), or why it has none."""
        out: list[Plan | str] = []
        for h in hits:
            try:
                out.append(self.memory.plan(task, procedure=h))
            except ProcmemError as err:
                out.append(f"error[{err.code}]: {err}")
        return out

    async def _tool_get_procedure(self, a: GetProcedureArgs) -> types.CallToolResult:
        await self._refresh()
        try:
            proc = await self._run(self.memory.get_procedure, a.name, a.version)
        except NotFound:
            if a.name not in self._by_tool:
                raise
            proc = await self._run(self.memory.get_procedure, self._by_tool[a.name], a.version)
        markdown = to_markdown(proc)
        tool = tool_name(proc.name, prefix=self._prefix)
        return json_result({"procedure": proc.model_dump(mode="json", by_alias=True),
                            "markdown": markdown,
                            "tool": tool if self._by_tool.get(tool) == proc.name else None},
                           text=markdown)

    def _recording(self, recording_id: str) -> _Recording:
        try:
            return self._recordings[recording_id]
        except KeyError:
            raise NotFound("recording", recording_id) from None

    async def _tool_start_recording(self, a: StartRecordingArgs) -> types.CallToolResult:
        if len(self._recordings) >= MAX_OPEN_RECORDINGS:
            raise UsageError(f"{MAX_OPEN_RECORDINGS} recordings are open already: finish some")
        recorder = self.memory.record(a.task, source=a.source, metadata=a.metadata)
        recorder.__enter__()
        recording_id = new_id("rec")
        self._recordings[recording_id] = _Recording(recorder)
        return json_result({"recording_id": recording_id, "task": a.task})

    async def _tool_record_step(self, a: RecordStepArgs) -> types.CallToolResult:
        rec = self._recording(a.recording_id)
        rec.recorder.add_step(a.action, a.args, output=a.output, error=a.error,
                              duration_ms=a.duration_ms)
        rec.steps += 1
        return json_result({"recording_id": a.recording_id, "steps": rec.steps})

    async def _tool_finish_recording(self, a: FinishRecordingArgs) -> types.CallToolResult:
        rec = self._recording(a.recording_id)
        recorder = rec.recorder
        recorder.outcome = a.outcome
        recorder.reward = a.reward
        del self._recordings[a.recording_id]
        await self._run(recorder.__exit__, None, None, None)
        trace = recorder.trace
        assert trace is not None  # set by __exit__
        data: dict[str, Any] = {"trace_id": trace.id, "steps": len(trace.steps),
                                "outcome": trace.outcome}
        if a.learn:
            report = await self._run(self.memory.learn)
            data["learned"] = {"created": report.created, "updated": report.updated,
                               "failed_groups": report.failed_groups}
            data["tools"] = [tool_name(n, prefix=self._prefix)
                             for n in [*report.created, *report.updated]]
        return json_result(data)

    async def _tool_report_evidence(self, a: ReportEvidenceArgs) -> types.CallToolResult:
        result = await self._run(self.memory.report, a.execution_id, reward=a.reward,
                                 source=a.source, note=a.note)
        return json_result(report_record(result))

    async def _tool_continue_execution(self, a: ContinueArgs) -> types.CallToolResult:
        turn = await self._run(self.memory.advance, a.execution_id, step_id=a.step_id,
                               output=a.output, error=a.error, duration_ms=a.duration_ms,
                               answers=a.answers)
        return turn_result(turn, tool_name(turn.execution.procedure, prefix=self._prefix))


def build_server(memory: Memory, *, extra_tools: ToolProvider | None = None,
                 run_procedure: ProcedureRunner | None = None, tool_prefix: str = "",
                 name: str = "procmem") -> ProcmemServer:
    """Build procmem's MCP server over ``memory`` (not started).

    Run it with :func:`serve_stdio` / :func:`serve_http`, or connect to it
    in-process with ``mcp.Client(server)`` (tests).

    Args:
        memory: The memory every tool works on; the caller closes it.
        extra_tools: More tools to serve (and call) alongside procmem's, e.g.
            the proxy's upstream tools (see :class:`ToolProvider`).
        run_procedure: Replaces the client-driven start of a procedure tool
            call (:meth:`procmem.Memory.start`), e.g. to replay against
            upstream servers directly; ``continue_execution`` is unchanged.
        tool_prefix: Put before every procedure tool name, to keep procedure
            tools apart from ``extra_tools`` (a procedure learned from one call
            of ``read_file`` is named ``read_file``).
        name: The server name announced to clients.

    Returns:
        A :class:`ProcmemServer` (an ``mcp.server.Server``).

    Raises:
        MissingExtra: The ``mcp`` package is not installed (raised on import).
        StoreError: The store cannot be read.
    """
    return ProcmemServer(memory, extra_tools=extra_tools, run_procedure=run_procedure,
                         tool_prefix=tool_prefix, name=name)


async def serve_stdio(server: ProcmemServer) -> None:
    """Serve MCP over stdin/stdout until the client closes stdin.

    Nothing else may write to stdout meanwhile (logs go to stderr).
    """
    from mcp.server.stdio import stdio_server

    async with stdio_server() as (read_stream, write_stream):
        send, receive = anyio.create_memory_object_stream[Any](0)

        async def answer_parse_errors() -> None:
            # the SDK passes a line it cannot parse on as an exception, which the
            # session drops silently: answer it with a JSON-RPC error and log it
            async with send:
                async for item in read_stream:
                    if isinstance(item, Exception):
                        await write_stream.send(parse_error_message(item))
                        continue
                    await send.send(item)

        async with anyio.create_task_group() as tg:
            tg.start_soon(answer_parse_errors)
            await server.run(receive, write_stream, server.create_initialization_options())
            tg.cancel_scope.cancel()


def parse_error_message(err: Exception) -> Any:
    """The JSON-RPC error (id null) that answers a line that is not a JSON-RPC message:
    -32700 (parse error) for text that is not JSON, -32600 (invalid request)
    otherwise (JSON-RPC 2.0, section 5.1). The problem is logged to stderr."""
    from mcp.shared.message import SessionMessage
    from mcp.types import INVALID_REQUEST, PARSE_ERROR, ErrorData, JSONRPCError

    text = str(err)
    not_json = "json_invalid" in text or "Invalid JSON" in text or isinstance(err, ValueError) \
        and "JSON" in text and "validation error" not in text
    code = PARSE_ERROR if not_json else INVALID_REQUEST
    message = "Parse error" if not_json else "Invalid Request"
    first = text.splitlines()[0][:200] if text else type(err).__name__
    logger.warning("mcp stdio: %s: %s", message.lower(), first)
    return SessionMessage(JSONRPCError(jsonrpc="2.0", id=None,
                                       error=ErrorData(code=code, message=message, data=first)))


async def serve_http(app: Any, *, host: str = "127.0.0.1", port: int = 8766) -> None:
    """Serve an MCP HTTP app (:func:`procmem.mcp.http.tenant_mcp_app`) at
    ``http://HOST:PORT/mcp`` until interrupted.

    Spec: https://modelcontextprotocol.io/specification/2025-11-25/basic/transports
    The app checks Host, Origin and the bearer key (:mod:`procmem.security.http_guard`).
    """
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level="warning")
    await uvicorn.Server(config).serve()


def run(server: ProcmemServer | None = None, *, http_app: Any = None, host: str = "127.0.0.1",
        port: int = 8766) -> None:
    """Serve ``server`` over stdio, or ``http_app`` over streamable HTTP, until the client
    or a signal stops it."""
    if http_app is not None:
        anyio.run(functools.partial(serve_http, http_app, host=host, port=port))
    elif server is not None:
        anyio.run(serve_stdio, server)
    else:
        raise UsageError("run() needs a server (stdio) or an http_app")
