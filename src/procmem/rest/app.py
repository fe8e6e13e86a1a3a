"""The REST API: a thin FastAPI adapter over :class:`procmem.Memory`.

``create_app(memory)`` builds the app; ``procmem serve`` (:mod:`procmem.cli.rest`)
runs it with uvicorn. The OpenAPI document is served at ``/openapi.json`` (the
interactive docs at ``/docs``). Endpoints:

* traces: ``POST /traces`` (a list, one transaction), ``GET /traces``, ``GET /traces/{id}``,
  ``DELETE /traces/{id}`` (answers which procedure versions learned from it);
* procedures: ``GET /procedures``, ``GET|PUT /procedures/{name}``,
  ``GET /procedures/{name}/versions[/{version}]``, ``GET /procedures/{name}/history``,
  ``POST /learn``, ``POST /optimize``;
* search: ``GET /search?task=...``; ``POST /plan`` (what a replay would do, no tool
  called; :mod:`procmem.rest.plan`);
* executions, driven by the client one tool call at a time
  (:mod:`procmem.services.client`): ``POST /executions`` returns the first turn,
  ``POST /executions/{id}/results`` and ``POST /executions/{id}/answers`` the
  next; a paused execution returns its ``needs`` and answering them resumes it.
  ``GET /executions[/{id}]``, ``POST /executions/{id}/evidence``. Every one of them
  answers one execution shape (:class:`~procmem.rest.models.ExecutionOut`,
  :mod:`procmem.services.execution_view`): the execution plus ``next_call`` and ``awaiting``;
* ``GET /stats[/{name}]``, ``GET /health``;
* the web UI at ``/ui/`` (``/`` redirects there; :mod:`procmem.web`), not in the
  OpenAPI document.

Invariants:
    * Every error, from procmem, from request validation or from routing, is
      one JSON shape, ``{"error": {"code": <procmem code>, "message": "..."}}``
      (:class:`~procmem.rest.models.ErrorResponse`,
      :func:`procmem.formats.serialize.error_record`), with the HTTP status of
      :func:`http_status`: usage errors 400, ``not_found`` 404, ``conflict``
      and ``replay_error`` 409, store errors 503, anything else 500. A request
      that does not match the OpenAPI document is 422 (code ``usage``, with
      ``details``); one that matches it but breaks a rule JSON Schema cannot
      state (unique step ids) is 400. Every error status an operation can
      answer is in the OpenAPI document, and ``scripts/schemathesis.sh`` checks it.
    * Bodies are validated as JSON Schema would: JSON types are strict (``"1"``
      is not a number, ``0`` is not a date-time), date-times need an offset.
    * Secure by default (:mod:`procmem.rest.security`, :mod:`procmem.security.http_guard`):
      every request but ``/health`` and the OpenAPI document needs a bearer API
      key with the route's scope; Host, Origin, body size and content type are
      checked before any handler runs.
    * One :class:`~procmem.Memory` per tenant (:mod:`procmem.tenants`): ``mem``
      in the handlers is the memory of the request's key's tenant, so no handler
      can reach another tenant's store. Handlers are sync (FastAPI runs them
      in a thread pool) and call the memory without a lock of their own: a
      :class:`~procmem.Memory` is safe to share between threads. Learn and
      optimize, the long work, run on their own connection to the tenant's store
      (so they do not hold the memory's lock on writes of versions, which
      ``PUT /procedures`` and evidence take), as jobs with an id and progress when
      asked (``Prefer: respond-async``, :mod:`procmem.rest.jobs`), and ``/health``
      only asks the store, so neither waits behind them (an in-memory store has no
      second connection: there they run on the shared memory).
    * Nothing here decides anything: each handler validates, calls one or two
      ``Memory`` methods and returns their result as the documented model; a
      shape the CLI and MCP give too (hit, report of changes, error) is made by
      :mod:`procmem.formats.serialize` (see ``docs/shapes.md``).

FastAPI is an optional dependency (``pip install -e '.[server]'``);
it is imported when an app is created, so importing this module never fails.
"""

import json
import os
import re
import warnings
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, cast

from pydantic import Field, TypeAdapter, ValidationError

from ..core.errors import InvalidProcedure, MissingExtra, ProcmemError, UnsafePattern, UsageError
from ..core.model import Procedure, Trace, utcnow
from ..formats.serialize import error_of, error_record, hit_record, report_record
from ..formats.validation import details as validation_details
from ..formats.validation import validation_message
from ..induction.extract import find_all
from ..learning.stats import VersionStats
from ..memory import Memory
from ..security.http_guard import DEFAULT_MAX_BODY_BYTES
from ..security.jobs import JobRunner
from ..services.execution_view import execution_view
from ..services.traces import deletion_json
from ..tenants import TenantMemories, TenantMemoryProxy
from ..web import add_ui_routes
from .jobs import add_job_routes
from .models import (
    NAME_PATTERN,
    PROCEDURE_LINKS,
    STATUS_BY_CODE,
    TURN_LINKS,
    AnswersRequest,
    EvidenceRequest,
    ExecutionOut,
    Health,
    HistoryRow,
    HitOut,
    RenameRequest,
    ReportOut,
    ResultRequest,
    StartRequest,
    TraceDeleted,
    TracesAdded,
    error_responses,
    http_status,
)
from .plan import add_plan_route
from .security import guard_settings, secure_app

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["STATUS_BY_CODE", "create_app", "http_status"]

_HAS_OFFSET = re.compile(r"(?:[Zz]|[+-]\d{2}:?\d{2})$")

_LIMIT_MAX = 1000
_OFFSET_MAX = 10**9
_VERSION_MAX = 2**31 - 1
_TRACES_MAX = 10_000

TraceList = Annotated[list[Trace], Field(max_length=_TRACES_MAX)]

T = TypeVar("T")


def _json_number(text: str) -> float | int:
    """A JSON number with a fraction or exponent; an integer when its value is integral."""
    value = float(text)
    return int(value) if value.is_integer() else value


def _check_extractors(procedure: Procedure) -> None:
    """Refuse extractors whose regexes do not compile: once stored, every search
    and start that reached the procedure would fail (``Memory.put_procedure``
    does not check them yet)."""
    for p in procedure.params:
        if p.extractor is not None:
            try:
                find_all(p.extractor, "")
            except (re.error, UnsafePattern) as err:
                raise InvalidProcedure(procedure.name, f"param {p.name!r}: the extractor is "
                                       f"not a valid regular expression: {err}") from err


def create_app(memory: "Memory | str | os.PathLike[str]", *, auth: bool = True,
               bind_host: str = "127.0.0.1", allow_hosts: tuple[str, ...] = (),
               allow_origins: tuple[str, ...] = (), cors_origins: tuple[str, ...] = (),
               max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> "FastAPI":
    """Build the REST app over one memory, secure by default (:mod:`procmem.rest.security`).

    Every request is served by the memory of its API key's tenant
    (:class:`procmem.tenants.TenantMemories`): ``memory`` for the ``default``
    tenant, a store of its own for any other.

    Args:
        memory: A :class:`~procmem.Memory` (the caller keeps owning it), or a
            location to open (then the app closes it when it shuts down). Its
            main file holds the API keys.
        auth: Require ``Authorization: Bearer <key>`` (``procmem keys create``);
            ``False`` only with a loopback ``bind_host``: every request is then
            the ``default`` tenant with every scope.
        bind_host: The address the server listens on (its name is an allowed Host).
        allow_hosts: More ``Host`` names to answer to (e.g. a reverse proxy's name).
        allow_origins: Browser origins admitted besides the server's own.
        cors_origins: Origins that get CORS headers (none by default).
        max_body_bytes: Largest request body (413 beyond).

    Returns:
        A FastAPI (ASGI) app; serve it with uvicorn or drive it with
        ``fastapi.testclient.TestClient``.

    Raises:
        MissingExtra: FastAPI is not installed (``pip install -e '.[server]'``).
        StoreUnavailable: ``memory`` is a location that cannot be opened.
        UsageError: ``auth`` is off on a host that is not loopback.
    """
    try:
        from fastapi import Depends, FastAPI, Path, Query, Request
        from fastapi.exceptions import RequestValidationError, ResponseValidationError
        from fastapi.responses import JSONResponse
        from starlette.exceptions import HTTPException
        from starlette.routing import Match
    except ImportError as err:
        raise MissingExtra("the REST server", "server") from err
    from .. import __version__

    owned = not isinstance(memory, Memory)
    root = Memory(memory) if not isinstance(memory, Memory) else memory
    tenants = TenantMemories(root)
    security = guard_settings(tenants, auth=auth, bind_host=bind_host, allow_hosts=allow_hosts,
                              allow_origins=allow_origins, cors_origins=cors_origins,
                              max_body_bytes=max_body_bytes)
    # the memory of the request's tenant, looked up on each use (fails closed)
    mem = cast(Memory, TenantMemoryProxy(tenants))
    # long work off the request path (procmem.rest.jobs); jobs are stored per tenant
    jobs = JobRunner(lambda tenant: tenants.get(tenant).store)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        jobs.close()
        tenants.close()
        if owned:
            root.close()

    app = FastAPI(
        title="procmem", version=__version__, lifespan=lifespan,
        description="Procedural memory for AI agents: traces, procedures (with versions), "
                    "search, client-driven replay with pause/resume, evidence and statistics. "
                    'Every error is `{"error": {"code": ..., "message": ...}}`.',
    )
    app.state.memory = root
    secure_app(app, tenants, security)

    # ------------------------------------------------------------------ errors

    def error(status: int, code: str, message: str,
              details: list[dict[str, Any]] | None = None, *,
              headers: dict[str, str] | None = None) -> JSONResponse:
        return JSONResponse(error_record(code, message, details),
                            status_code=status, headers=headers)

    @app.exception_handler(ProcmemError)
    async def on_procmem_error(_: Request, err: ProcmemError) -> JSONResponse:
        return error(http_status(err), *error_of(err))

    @app.exception_handler(RequestValidationError)
    async def on_invalid_request(_: Request, err: RequestValidationError) -> JSONResponse:
        details = validation_details(err)
        # Only rules JSON Schema cannot state failed (unique step ids...): the
        # request matches the document, procmem cannot use it.
        status = 400 if details and all(d["type"] == "value_error" for d in details) else 422
        return error(status, "usage", validation_message(err, "invalid request"),
                     details=details)

    @app.exception_handler(ValidationError)
    async def on_invalid_value(_: Request, err: ValidationError) -> JSONResponse:
        return error(400, *error_of(err))

    @app.exception_handler(ResponseValidationError)
    async def on_bad_response(_: Request, err: ResponseValidationError) -> JSONResponse:
        return error(500, "internal", f"the response does not match its model: {err}")

    @app.exception_handler(HTTPException)
    async def on_http_error(request: Request, err: HTTPException) -> JSONResponse:
        headers = dict(err.headers or {})
        if err.status_code == 405:
            # Starlette names only the first route matching the path; list them all.
            methods = set()
            for route in app.router.routes:
                match, _ = route.matches(request.scope)
                if match != Match.NONE:
                    methods |= set(getattr(route, "methods", None) or ())
            headers["Allow"] = ", ".join(sorted(methods))
            return error(405, "usage", f"method {request.method} is not allowed on "
                         f"{request.url.path} (allowed: {headers['Allow']})", headers=headers)
        if err.status_code == 404:
            return error(404, "not_found", f"no endpoint {request.url.path!r} "
                         "(see /openapi.json)", headers=headers)
        code = "internal" if err.status_code >= 500 else "usage"
        return error(err.status_code, code, str(err.detail), headers=headers)

    @app.exception_handler(Exception)
    async def on_bug(_: Request, err: Exception) -> JSONResponse:
        return error(500, "internal", f"internal error: {type(err).__name__}: {err}")

    # ------------------------------------------------------------------ parameters

    def strict_body(annotation: Any) -> Any:
        """A dependency that validates the raw JSON body as JSON Schema would.

        FastAPI validates bodies in pydantic's lax Python mode, which takes
        ``"1"`` for a number and ``0`` for a date-time; the OpenAPI document
        promises JSON types, so the body is validated again in strict JSON mode
        (an ISO 8601 string is still a date-time there). JSON Schema counts
        ``2.0`` as an integer (draft 2020-12, section 6.1.1), strict pydantic
        does not: integral numbers are made integers first.
        """
        adapter: TypeAdapter[Any] = TypeAdapter(annotation)

        async def check(request: Request) -> None:
            raw = await request.body()
            try:
                raw = json.dumps(json.loads(raw, parse_float=_json_number)).encode()
            except (ValueError, RecursionError):
                pass  # not JSON (or too deep for this check): validate_json reports it
            try:
                adapter.validate_json(raw, strict=True)
            except ValidationError as err:
                raise RequestValidationError(
                    [{**e, "loc": ("body", *e["loc"])} for e in err.errors(include_url=False)]
                ) from err
        return Depends(check)

    def name_path() -> Any:
        return Path(pattern=NAME_PATTERN, max_length=200, description="A procedure name.")

    def id_path(what: str) -> Any:
        return Path(min_length=1, max_length=200, description=f"The {what} id.")

    def limit_query(default: int = 100, maximum: int = _LIMIT_MAX) -> Any:
        return Query(default, ge=1, le=maximum, description=f"Maximum items, 1-{maximum}.")

    def offset_query() -> Any:
        return Query(0, ge=0, le=_OFFSET_MAX, description="Items to skip.")

    # ------------------------------------------------------------------ traces

    async def trace_offsets(request: Request) -> None:
        """RFC 3339 date-times carry an offset; the library would take a naive one as UTC."""
        try:
            body = json.loads(await request.body())
        except (ValueError, RecursionError):
            return  # strict_body reports it
        if not isinstance(body, list):
            return
        naive = [{"loc": ("body", i, "created_at"), "type": "timezone_aware",
                  "msg": "a date-time needs a time zone offset (RFC 3339)"}
                 for i, t in enumerate(body)
                 if isinstance(t, dict) and isinstance(t.get("created_at"), str)
                 and not _HAS_OFFSET.search(t["created_at"])]
        if naive:
            raise RequestValidationError(naive)

    @app.post("/traces", response_model=TracesAdded, tags=["traces"],
              responses=error_responses(400, 409),
              dependencies=[strict_body(TraceList), Depends(trace_offsets)])
    def add_traces(traces: TraceList) -> TracesAdded:
        """Store traces in one transaction: all of them or none.

        A trace whose id is already stored with the same content is skipped;
        with other content the whole batch is refused (409).
        """
        stored = mem.add_traces(traces)
        return TracesAdded(received=len(traces), stored=stored, ids=[t.id for t in traces])

    @app.get("/traces", response_model=list[Trace], tags=["traces"], responses=error_responses(400))
    def list_traces(limit: int = limit_query(), offset: int = offset_query()) -> list[Trace]:
        """Stored traces, in insertion order."""
        return mem.list_traces(limit=limit, offset=offset)

    @app.get("/traces/{trace_id}", response_model=Trace, tags=["traces"],
             responses=error_responses(404))
    def get_trace(trace_id: str = id_path("trace")) -> Trace:
        """One trace."""
        return mem.get_trace(trace_id)

    @app.delete("/traces/{trace_id}", response_model=TraceDeleted, tags=["traces"],
                responses=error_responses(404))
    def delete_trace(trace_id: str = id_path("trace")) -> TraceDeleted:
        """Delete one trace, and say which procedure versions learned from it.

        Those versions are kept as they are (immutable); the next ``POST /learn``
        re-induces the trace's group from the traces that remain.
        """
        impact = mem.trace_impact(trace_id)  # 404 when there is no such trace
        return TraceDeleted.model_validate(deletion_json(impact, mem.delete_trace(trace_id)))

    # ------------------------------------------------------------------ procedures

    @app.get("/procedures", response_model=list[Procedure], tags=["procedures"],
             responses=error_responses(400))
    def list_procedures(
        status: Literal["candidate", "active", "deprecated"] | None = Query(
            None, description="Only procedures with this status."),
        limit: int = limit_query(), offset: int = offset_query(),
    ) -> list[Procedure]:
        """Current versions, by name, with statistics."""
        return mem.list_procedures(status=status, limit=limit, offset=offset)

    @app.get("/procedures/{name}", response_model=Procedure, tags=["procedures"],
             responses={200: {"description": "The current version.",
                              "links": PROCEDURE_LINKS}, **error_responses(404)})
    def get_procedure(name: str = name_path()) -> Procedure:
        """The current version of a procedure, with statistics."""
        return mem.get_procedure(name)

    @app.put("/procedures/{name}", response_model=Procedure, tags=["procedures"],
             responses={200: {"description": "The version stored (or the equal current one).",
                              "links": PROCEDURE_LINKS}, **error_responses(400)},
             dependencies=[strict_body(Procedure)])
    def put_procedure(procedure: Procedure, name: str = name_path()) -> Procedure:
        """Store a procedure as its next version (unchanged content stores nothing).

        The body's ``version``, ``created_at`` and statistics are ignored:
        versions are numbered and dated by the server, statistics derived from
        executions. The body's ``name`` must be the path's.
        """
        if procedure.name != name:
            raise UsageError(f"the body names procedure {procedure.name!r}, the path {name!r}")
        _check_extractors(procedure)
        # the body's statistics were dropped by validation (procmem.core.procstats)
        fresh = procedure.model_copy(update={"created_at": utcnow()})
        return mem.put_procedure(fresh)

    @app.get("/procedures/{name}/versions", response_model=list[Procedure],
             tags=["procedures"], responses=error_responses(404))
    def list_versions(name: str = name_path()) -> list[Procedure]:
        """Every version of a procedure, oldest first."""
        return mem.list_versions(name)

    @app.get("/procedures/{name}/versions/{version}", response_model=Procedure,
             tags=["procedures"], responses=error_responses(404))
    def get_version(name: str = name_path(),
                    version: int = Path(ge=1, le=_VERSION_MAX)) -> Procedure:
        """One version of a procedure, with statistics."""
        return mem.get_procedure(name, version)

    @app.get("/procedures/{name}/history", response_model=list[HistoryRow],
             tags=["procedures"], responses=error_responses(404))
    def history(name: str = name_path()) -> list[HistoryRow]:
        """Every version with its status, reason, statistics and verification record."""
        rows = mem.history(name)
        return [HistoryRow.model_validate(r) for r in rows]

    @app.post("/procedures/{name}/rename", response_model=Procedure, tags=["procedures"],
              operation_id="rename_procedure", dependencies=[strict_body(RenameRequest)],
              responses=error_responses(400, 404, 409))
    def rename(body: RenameRequest, name: str = name_path()) -> Procedure:
        """Rename a procedure; versions, lineage, executions and statistics move with it.

        The old name stays an alias: reading it gives the renamed procedure.
        Returns the current version under the new name (409 if that name is taken).
        """
        return mem.rename(name, body.new_name)

    add_job_routes(app, mem, tenants, jobs)  # /learn, /optimize, /jobs

    # ------------------------------------------------------------------ search

    @app.get("/search", response_model=list[HitOut], tags=["search"],
             responses=error_responses(400))
    def search(
        task: str = Query(min_length=1, max_length=5000, pattern=r"\S",
                          description="The task in plain words.",
                          examples=["Cancel order #W6067464 because no longer needed."]),
        limit: int = limit_query(5, 100),
        retriever: Literal["bm25", "vector", "hybrid"] = Query(
            "hybrid",
            description="First stage: BM25, dense vectors, or both fused by their scores."),
        tag: Annotated[list[str],
                       Query(description="Only procedures with all of these tags.")] = [],  # noqa: B006
        status: Literal["active", "candidate", "deprecated", "any"] = Query(
            "active", description="Only procedures whose current version has this status."),
        namespace: str | None = Query(None, description="Only procedures of this namespace."),
        confident_only: bool = Query(False, description="Only hits above the abstention "
                                     "threshold: empty means nothing in memory fits."),
        rerank: bool = Query(True, description="When the server has a reranker (a language "
                             "model, procmem --reranker), let it reorder the top 10 hits."),
    ) -> list[dict[str, Any]]:
        """The procedures that best fit a task, best first, with score, ranks, the
        explanation (matched terms, nearest demonstration, params bound) and
        confidence; the hit shape the CLI and MCP give, plus the full procedure."""
        hits = mem.search(
            task, limit=limit, retriever=retriever, tags=tag or (),
            status=None if status == "any" else status, namespace=namespace,
            confident_only=confident_only, rerank=rerank)
        return [dict(hit_record(i, h), procedure=h.procedure)
                for i, h in enumerate(hits, start=1)]

    add_plan_route(app, mem, strict_body)  # POST /plan (procmem.rest.plan)

    # ------------------------------------------------------------------ executions

    @app.post("/executions", response_model=ExecutionOut, status_code=201, tags=["executions"],
              operation_id="start_execution", dependencies=[strict_body(StartRequest)],
              responses={201: {"description": "The first turn.", "links": TURN_LINKS},
                         **error_responses(400, 404, 409)})
    def start(body: StartRequest) -> ExecutionOut:
        """Start an execution whose tool calls the client makes.

        Returns the first turn: ``next_call`` to make (then post its result),
        ``needs`` to answer (the execution is paused), or the end.
        """
        target: Procedure | str = body.procedure
        if body.version is not None:
            target = mem.get_procedure(body.procedure, body.version)
        return ExecutionOut.model_validate(
            mem.start(target, task=body.task, params=body.params).to_json())

    @app.post("/executions/{execution_id}/results", response_model=ExecutionOut,
              tags=["executions"], operation_id="post_result",
              responses={200: {"description": "The next turn.", "links": TURN_LINKS},
                         **error_responses(400, 404, 409)},
              dependencies=[strict_body(ResultRequest)])
    def post_result(body: ResultRequest,
                    execution_id: str = id_path("execution")) -> ExecutionOut:
        """Give the result of the outstanding tool call; returns the next turn."""
        turn = mem.advance(execution_id, step_id=body.step_id,
                           output=body.output, error=body.error,
                           duration_ms=body.duration_ms)
        return ExecutionOut.model_validate(turn.to_json())

    @app.post("/executions/{execution_id}/answers", response_model=ExecutionOut,
              tags=["executions"], operation_id="post_answers",
              responses={200: {"description": "The next turn.", "links": TURN_LINKS},
                         **error_responses(400, 404, 409)},
              dependencies=[strict_body(AnswersRequest)])
    def post_answers(body: AnswersRequest,
                     execution_id: str = id_path("execution")) -> ExecutionOut:
        """Answer a paused execution's needs (resume it); returns the next turn.

        Answers that leave needs open return the execution paused again, with them.
        """
        turn = mem.advance(execution_id, answers=body.answers)
        return ExecutionOut.model_validate(turn.to_json())

    @app.get("/executions/{execution_id}", response_model=ExecutionOut, tags=["executions"],
             operation_id="get_execution", responses=error_responses(404))
    def get_execution(execution_id: str = id_path("execution")) -> ExecutionOut:
        """One execution with its step runs, needs and params, and ``next_call`` while
        a client-driven execution waits for a tool result (the turn shape)."""
        return ExecutionOut.model_validate(execution_view(mem.get_execution(execution_id)))

    @app.get("/executions", response_model=list[ExecutionOut], tags=["executions"],
             responses=error_responses(400))
    def list_executions(
        procedure: str | None = Query(None, pattern=NAME_PATTERN, max_length=200,
                                      description="Only executions of this procedure."),
        limit: int = limit_query(), offset: int = offset_query(),
    ) -> list[ExecutionOut]:
        """Executions, newest first, in the shape of ``GET /executions/{id}``."""
        return [ExecutionOut.model_validate(execution_view(ex)) for ex in
                mem.list_executions(procedure=procedure, limit=limit, offset=offset)]

    @app.post("/executions/{execution_id}/evidence", response_model=ReportOut, status_code=201,
              tags=["executions"], operation_id="post_evidence",
              responses=error_responses(400, 404), dependencies=[strict_body(EvidenceRequest)])
    def post_evidence(body: EvidenceRequest,
                      execution_id: str = id_path("execution")) -> dict[str, Any]:
        """Report an execution's outcome; reliability moves on environment, test and
        user evidence (agent evidence can only lower it). Returns the evidence stored
        and the status changes it caused (a candidate promoted or demoted)."""
        return report_record(mem.report(execution_id, reward=body.reward, source=body.source,
                                        note=body.note))

    # ------------------------------------------------------------------ statistics

    @app.get("/stats", response_model=list[VersionStats], tags=["stats"],
             responses=error_responses(validated=False))
    def stats() -> list[VersionStats]:
        """Statistics of every current procedure."""
        return mem.stats()

    @app.get("/stats/{name}", response_model=list[VersionStats], tags=["stats"],
             responses=error_responses(404))
    def stats_of(name: str = name_path()) -> list[VersionStats]:
        """Statistics of every version of a procedure, with per-step statistics."""
        return mem.stats(name)

    @app.get("/health", response_model=Health, tags=["health"],
             responses=error_responses(validated=False))
    def health() -> Health:
        """The server is up and its store answers (never waits behind learn or optimize:
        they run on their own connection)."""
        mem.store.count_traces()
        return Health(version=__version__)

    try:  # the web UI at /ui (procmem.web), behind the same guard and keys
        add_ui_routes(app, mem)
    except MissingExtra as err:
        warnings.warn(f"{err}; serving the REST API without it", stacklevel=2)
    return app
