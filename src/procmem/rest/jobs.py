"""The REST routes of long work: ``POST /learn`` and ``POST /optimize`` as jobs.

Both routes answer at once when the client asks for it with
``Prefer: respond-async`` (RFC 7240 §4.1): ``202 Accepted`` with the
:class:`~procmem.security.jobs.Job`, a ``Location: /jobs/{id}`` header and
``Preference-Applied: respond-async``. Without it they answer when the work is
done (200, the report), as before. ``GET /jobs`` lists the caller's tenant's jobs,
``GET /jobs/{id}`` tells one's status, progress and result (``read`` scope).

Invariants:
    * Long work never holds the server's other requests: it runs on a
      connection of its own to the tenant's store (an in-memory store has no
      second connection; there it runs on the shared, thread-safe memory).
    * A job is its tenant's: another tenant's ``GET /jobs/{id}`` is 404.
    * The result of a job is the body the synchronous route would have
      answered (:class:`~procmem.rest.models.LearnOut`,
      :class:`~procmem.rest.models.OptimizeOut`).

FastAPI is imported by the caller only (this module imports none of it at import time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, TypeVar

from ..core.model import NAME_PATTERN
from ..memory import Memory
from ..security.jobs import Job, JobRunner
from ..tenants import TenantMemories
from .models import LearnOut, OptimizeOut, error_responses

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["add_job_routes", "respond_async"]

T = TypeVar("T")
Progress = Callable[[int, int], None]


def respond_async(prefer: str | None) -> bool:
    """Whether a ``Prefer`` header value asks for ``respond-async`` (RFC 7240:
    comma-separated preferences, each ``token[=value][; params]``, case-insensitive)."""
    if not prefer:
        return False
    return any(part.split(";", 1)[0].split("=", 1)[0].strip().lower() == "respond-async"
               for part in prefer.split(","))


_ACCEPTED: dict[int | str, dict[str, Any]] = {202: {
    "model": Job,
    "description": "With `Prefer: respond-async`: the job, queued; follow `Location` "
                   "(`GET /jobs/{id}`) for progress and result.",
    "headers": {"Location": {"schema": {"type": "string"}, "description": "The job's URL."}}}}


def add_job_routes(app: FastAPI, mem: Memory, tenants: TenantMemories, jobs: JobRunner) -> None:
    """Add ``POST /learn``, ``POST /optimize``, ``GET /jobs`` and ``GET /jobs/{id}``.

    Args:
        app: The app of :func:`procmem.rest.app.create_app`.
        mem: The request's tenant's memory (a :class:`~procmem.tenants.TenantMemoryProxy`).
        tenants: The tenants' memories (a job looks its tenant's up there).
        jobs: Where jobs run.
    """
    from fastapi import Header, Path, Query
    from fastapi.responses import JSONResponse

    def run_long(kind: str, work: Callable[[Memory, Progress | None], dict[str, Any]],
                 prefer: str | None) -> Any:
        tenant = mem.tenant
        target = tenants.get(tenant)

        def on_own_connection(progress: Progress | None) -> dict[str, Any]:
            if target.location == ":memory:":  # no second connection: the shared memory
                return work(target, progress)
            with target.for_tenant(tenant) as own:
                return work(own, progress)

        if not respond_async(prefer):
            return on_own_connection(None)
        job = jobs.submit(kind, tenant, on_own_connection)
        return JSONResponse(job.model_dump(mode="json"), status_code=202,
                            headers={"Location": f"/jobs/{job.id}",
                                     "Preference-Applied": "respond-async"})

    prefer_header = Header(None, max_length=200, description=(
        "`respond-async` (RFC 7240): answer 202 with a job at once instead of waiting."))

    @app.post("/learn", response_model=LearnOut, tags=["procedures"],
              responses={**_ACCEPTED, **error_responses(400)})
    def learn(prefer: str | None = prefer_header) -> Any:
        """Induce procedures from the stored traces (idempotent); progress counts groups."""
        def work(m: Memory, progress: Progress | None) -> dict[str, Any]:
            return LearnOut(**asdict(m.learn(progress=progress))).model_dump(mode="json")
        return run_long("learn", work, prefer)

    @app.post("/optimize", response_model=OptimizeOut, tags=["procedures"],
              responses={**_ACCEPTED, **error_responses(400, 404)})
    def optimize(name: str | None = Query(None, pattern=NAME_PATTERN, max_length=200,
                                          description="Only this procedure."),
                 prefer: str | None = prefer_header) -> Any:
        """Propose, verify and store candidate versions (repair, prune, merge, factor);
        progress counts procedures."""
        def work(m: Memory, progress: Progress | None) -> dict[str, Any]:
            return OptimizeOut(**asdict(m.optimize(name, progress=progress))
                               ).model_dump(mode="json")
        return run_long("optimize", work, prefer)

    @app.get("/jobs", response_model=list[Job], tags=["jobs"],
             responses=error_responses(validated=False))
    def list_jobs() -> list[Job]:
        """The jobs of the caller's tenant, from every server process on its store, newest first."""
        return jobs.list(mem.tenant)

    @app.get("/jobs/{job_id}", response_model=Job, tags=["jobs"],
             responses=error_responses(404))
    def get_job(job_id: str = Path(pattern=r"^[0-9a-f]{32}$",
                                   description="The job's id.")) -> Job:
        """One job: status, progress and, once finished, its result or error."""
        return jobs.get(mem.tenant, job_id)
