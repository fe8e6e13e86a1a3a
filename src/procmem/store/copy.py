"""Copy a whole store into an empty one, between any two backends (``procmem copy``).

Only the :class:`~procmem.store.base.Store` protocol is used, so SQLite ->
PostgreSQL, PostgreSQL -> SQLite and any other pair work alike, and the copy is
verified by what the protocol reads back: :func:`store_fingerprint` counts each
record kind and hashes it on both sides.

Invariants:
    * The destination must be empty (no record of any kind below); otherwise
      ``Conflict`` and nothing is written.
    * Every write goes into one ``dst.transaction()``: a failure leaves the
      destination as it was (empty) and raises ``StoreError`` naming the record
      kind, how far the copy got and the cause.
    * What is copied, through the protocol: traces (in commit order), every
      procedure version with its status, pins, verification records, tool schemas
      (current ones), procedure notes (in order), aliases, executions with their
      step runs (oldest first, so ties keep their order), evidence (in order),
      embeddings of every model, calibrations, API keys of every tenant (revoked
      ones with their ``revoked_at``). Run statistics and search documents are
      derived by the destination as the records arrive; the statistics are
      checked like a record kind (``procedure_stats``).
    * Not copied: saved search indexes (index snapshots: caches keyed by the
      index revision, which differs in the destination; the first search
      rebuilds them), execution leases (held by live processes: copy a store no
      one is writing to), the history of replaced tool schemas (not part of the
      protocol), the trace change feed's tokens (readers start over). Note ids
      and ``created_at``, and alias times, are the destination's own, so the
      note hash leaves them out.
    * One store holds one tenant (:func:`procmem.store.tenant_location`): copy
      each tenant's store on its own (``procmem copy --tenant T``).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..core.errors import Conflict, ProcmemError, StoreError, UsageError
from ..core.model import Execution
from .base import Store

__all__ = ["DERIVED", "KINDS", "CopyReport", "KindReport", "Progress", "copy_store",
           "shown_location", "store_fingerprint"]

KINDS: tuple[str, ...] = (
    "traces", "procedures", "pins", "verifications", "tool_schemas", "notes", "aliases",
    "executions", "step_runs", "evidence", "embeddings", "calibrations", "api_keys",
    "procedure_stats",
)
"""Record kinds in copy order; each is counted and hashed on both sides."""
DERIVED = frozenset({"procedure_stats"})
"""Kinds the destination derives from the others (checked, not written)."""
NOT_COPIED: tuple[str, ...] = (
    "index snapshots (caches; rebuilt by the first search)",
    "execution leases (held by live processes)",
    "tool schema history (not in the Store protocol)",
    "note ids and created_at, alias rename times (the destination's own)",
)
"""What :func:`copy_store` leaves behind, as reported."""

Progress = Callable[[str, int, "int | None"], None]
"""``progress(kind, done, total)``: called as records of ``kind`` are read or written."""

_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@]*):[^@/]*@")

_PAGE = 500
_CHUNK = 1000  # embedding hashes per get_embeddings


@dataclass(frozen=True)
class KindReport:
    """One record kind on both sides: how many records and the SHA-256 of their content."""

    kind: str
    source_count: int
    source_hash: str
    dest_count: int
    dest_hash: str

    @property
    def ok(self) -> bool:
        """True when the destination has the same records as the source."""
        return (self.source_count, self.source_hash) == (self.dest_count, self.dest_hash)


@dataclass(frozen=True)
class CopyReport:
    """What :func:`copy_store` did; ``ok`` when every kind matches on both sides."""

    source: str
    destination: str
    kinds: tuple[KindReport, ...]
    not_copied: tuple[str, ...] = field(default=NOT_COPIED)

    @property
    def ok(self) -> bool:
        return all(k.ok for k in self.kinds)

    @property
    def mismatched(self) -> list[str]:
        """The kinds whose count or hash differs."""
        return [k.kind for k in self.kinds if not k.ok]

    def to_json(self) -> dict[str, Any]:
        """``{"source", "destination", "ok", "kinds": {kind: {...}}, "not_copied"}``."""
        return {"source": self.source, "destination": self.destination, "ok": self.ok,
                "kinds": {k.kind: {"source_count": k.source_count, "dest_count": k.dest_count,
                                   "source_sha256": k.source_hash, "dest_sha256": k.dest_hash,
                                   "ok": k.ok} for k in self.kinds},
                "not_copied": list(self.not_copied)}


def shown_location(location: str) -> str:
    """``location`` with the password of a URL shown as ``***`` (for reports and errors)."""
    return _PASSWORD.sub(r"\1:***@", location)


# ------------------------------------------------------------------- reading


def _canonical(record: Any) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False, default=str)


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json", by_alias=True)


def _executions(store: Store, *, oldest_first: bool = False,
                total: int | None = None) -> Iterator[Execution]:
    """Every execution with its step runs; newest first, or oldest first given ``total``."""
    if not oldest_first:
        offset = 0
        while page := store.list_executions(limit=_PAGE, offset=offset):
            yield from page
            offset += len(page)
        return
    assert total is not None
    for start in reversed(range(0, total, _PAGE)):
        yield from reversed(store.list_executions(limit=_PAGE, offset=start))


def _records(store: Store) -> Iterator[tuple[str, Any]]:
    """``(kind, canonical record)`` of every record through the protocol, kind by kind."""
    offset = 0
    while traces := store.list_traces(limit=_PAGE, offset=offset):
        yield from (("traces", _dump(t)) for t in traces)
        offset += len(traces)
    names = store.list_procedure_names()  # one query, not pages of whole procedures
    for name in names:
        for version in store.list_versions(name):
            yield "procedures", _dump(version)
            verification = store.get_verification(name, version.version)
            if verification is not None:
                yield "verifications", {"name": name, "version": version.version,
                                        "record": verification}
        if store.is_pinned(name):
            yield "pins", {"name": name}
    for tool, schema in store.list_tool_schemas().items():
        yield "tool_schemas", {"name": tool, "schema": schema}
    for note in store.list_procedure_notes():
        yield "notes", {"name": note["name"], "kind": note["kind"], "record": note["record"]}
    for old, new in store.list_aliases().items():
        yield "aliases", {"old": old, "new": new}
    for execution in _executions(store):
        yield "executions", execution.model_dump(mode="json", by_alias=True,
                                                 exclude={"step_runs"})
        for run in execution.step_runs:
            yield "step_runs", {"execution_id": execution.id, **_dump(run)}
    for evidence in store.list_evidence():
        yield "evidence", _dump(evidence)
    for model_id in store.count_embeddings():
        for h, vector in _embeddings(store, model_id):
            data = vector.astype("<f4").tobytes()
            yield "embeddings", {"model_id": model_id, "hash": h, "dim": int(vector.shape[0]),
                                 "f32le_sha256": hashlib.sha256(data).hexdigest()}
    for key in store.list_calibration_keys():
        yield "calibrations", {"key": key, "text": store.get_calibration(key)}
    for api_key in store.list_api_keys():
        yield "api_keys", {**_dump(api_key), "secret_hash": api_key.secret_hash}
    for (name, number), stats in sorted(store.procedure_stats(names).items()):
        yield "procedure_stats", {"name": name, "version": number,
                                  "stats": stats.model_dump(mode="json")}


def _embeddings(store: Store, model_id: str) -> Iterator[tuple[str, Any]]:
    hashes = store.list_embedding_hashes(model_id)
    for i in range(0, len(hashes), _CHUNK):
        found = store.get_embeddings(model_id, hashes[i:i + _CHUNK])
        yield from sorted(found.items())


def store_fingerprint(store: Store, *, progress: Progress | None = None
                      ) -> dict[str, tuple[int, str]]:
    """Count and hash every record kind of a store, through the protocol only.

    The hash of a kind is the SHA-256 (hex) of the newline-joined, sorted SHA-256
    digests of its records' canonical JSON (keys sorted, no spaces, UTF-8), so it
    depends on the records and not on the order a backend lists them in. Records
    are the protocol's models dumped as JSON (``by_alias``; an API key with its
    ``secret_hash``), a note without its id and ``created_at``, a vector as the
    SHA-256 of its little-endian float32 bytes.

    Args:
        store: Any store.
        progress: Called with ``(kind, records so far, None)`` every 500 records.

    Returns:
        ``{kind: (count, sha256 hex)}`` for every kind of :data:`KINDS`.

    Raises:
        StoreError: The store failed while being read.
    """
    digests: dict[str, list[str]] = {kind: [] for kind in KINDS}
    for kind, record in _records(store):
        found = digests[kind]
        found.append(hashlib.sha256(_canonical(record).encode("utf-8")).hexdigest())
        if progress is not None and len(found) % _PAGE == 0:
            progress(kind, len(found), None)
    return {kind: (len(found), hashlib.sha256("\n".join(sorted(found)).encode()).hexdigest())
            for kind, found in digests.items()}


# ------------------------------------------------------------------- writing


def _contents(store: Store) -> list[str]:
    """What a store holds, as ``"3 traces"`` phrases (empty when it holds nothing)."""
    found = [
        ("traces", store.count_traces()),
        ("procedures", store.count_procedures()),
        ("executions", len(store.list_executions(limit=1))),
        ("evidence records", len(store.list_evidence()[:1])),
        ("embeddings", sum(store.count_embeddings().values())),
        ("tool schemas", len(store.list_tool_schemas())),
        ("procedure notes", len(store.list_procedure_notes())),
        ("aliases", len(store.list_aliases())),
        ("calibrations", len(store.list_calibration_keys())),
        ("API keys", len(store.list_api_keys())),
    ]
    return [f"{'some' if kind in ('executions', 'evidence records') else n} {kind}"
            for kind, n in found if n]


class _Copier:
    """Writes every record of ``src`` into ``dst`` (inside the caller's transaction)."""

    def __init__(self, src: Store, dst: Store, totals: dict[str, int],
                 progress: Progress | None) -> None:
        self.src, self.dst, self.totals, self.progress = src, dst, totals, progress
        self.kind = ""
        self.done: dict[str, int] = {}

    def at(self, kind: str) -> None:
        """Say which kind is being written (for the progress and a failure's message)."""
        self.kind = kind

    def step(self, n: int = 1) -> None:
        done = self.done[self.kind] = self.done.get(self.kind, 0) + n
        if self.progress is not None:
            self.progress(self.kind, done, self.totals.get(self.kind))

    def run(self) -> None:
        src, dst = self.src, self.dst
        offset = 0
        while traces := src.list_traces(limit=_PAGE, offset=offset):
            self.at("traces")
            dst.put_traces(traces)
            self.step(len(traces))
            offset += len(traces)
        for name in src.list_procedure_names():
            for version in src.list_versions(name):
                self.at("procedures")
                dst.put_procedure(version)
                self.step()
                verification = src.get_verification(name, version.version)
                if verification is not None:
                    self.at("verifications")
                    dst.put_verification(name, version.version, verification)
                    self.step()
            if src.is_pinned(name):
                self.at("pins")
                dst.set_pinned(name, True)
                self.step()
        self.at("tool_schemas")
        schemas = src.list_tool_schemas()
        if schemas:
            dst.put_tool_schemas(schemas)
            self.step(len(schemas))
        for note in src.list_procedure_notes():
            self.at("notes")
            dst.add_procedure_note(note["name"], note["kind"], note["record"])
            self.step()
        for old, new in src.list_aliases().items():
            self.at("aliases")
            dst.put_alias(old, new)
            self.step()
        total = self.totals.get("executions", 0)
        for execution in _executions(src, oldest_first=True, total=total):
            self.at("executions")
            dst.put_execution(execution)
            for run in execution.step_runs:
                dst.put_step_run(execution.id, run)
            self.step()
        for evidence in src.list_evidence():
            self.at("evidence")
            dst.put_evidence(evidence)
            self.step()
        for model_id in src.count_embeddings():
            hashes = src.list_embedding_hashes(model_id)
            for i in range(0, len(hashes), _CHUNK):
                self.at("embeddings")
                vectors = src.get_embeddings(model_id, hashes[i:i + _CHUNK])
                dst.put_embeddings(model_id, vectors)
                self.step(len(vectors))
        for key in src.list_calibration_keys():
            text = src.get_calibration(key)
            if text is not None:
                self.at("calibrations")
                dst.put_calibration(key, text)
                self.step()
        for api_key in src.list_api_keys():
            self.at("api_keys")
            dst.put_api_key(api_key)
            self.step()


def copy_store(src: Store, dst: Store, *, progress: Progress | None = None) -> CopyReport:
    """Copy every record of ``src`` into the empty store ``dst``, then verify it.

    The source is read through the protocol twice (fingerprint, copy) and the
    destination once after the copy committed; see the module docstring for what
    is and is not copied. Copy a store no one writes to meanwhile (a write in
    between shows up as a mismatch in the report).

    Args:
        src: The store to copy from (left unchanged).
        dst: An empty store (any backend).
        progress: ``progress(kind, done, total)`` while reading and writing
            (``total`` is None while fingerprinting).

    Returns:
        The report: per kind, the counts and hashes of both sides; ``ok`` is
        False when any differs (the destination keeps what was written).

    Raises:
        UsageError: ``src`` and ``dst`` are the same store.
        Conflict: ``dst`` is not empty (nothing is written).
        StoreError: Reading ``src`` or writing ``dst`` failed: the destination
            is rolled back to empty; the message names the kind and the cause.
    """
    same_place = (src.location == dst.location != ":memory:"
                  and getattr(src, "schema", None) == getattr(dst, "schema", None))
    if src is dst or same_place:
        raise UsageError(f"cannot copy store {shown_location(src.location)!r} onto itself")
    before = _guarded(src, "reading", lambda: store_fingerprint(src, progress=progress))
    copier = _Copier(src, dst, {k: n for k, (n, _) in before.items()}, progress)
    try:
        with dst.transaction():
            held = _contents(dst)
            if held:
                raise Conflict("store", shown_location(dst.location),
                               "the destination is not empty (" + ", ".join(held)
                               + "); copy into a new database or file")
            copier.run()
    except Conflict as err:
        if copier.kind == "":
            raise
        raise _failed(dst, copier, err) from err
    except ProcmemError as err:
        raise _failed(dst, copier, err) from err
    after = _guarded(dst, "verifying", lambda: store_fingerprint(dst, progress=progress))
    kinds = tuple(KindReport(kind, before[kind][0], before[kind][1],
                             after[kind][0], after[kind][1]) for kind in KINDS)
    return CopyReport(shown_location(src.location), shown_location(dst.location), kinds)


def _failed(dst: Store, copier: _Copier, err: ProcmemError) -> StoreError:
    total = copier.totals.get(copier.kind)
    done = copier.done.get(copier.kind, 0)
    where = f"{copier.kind} ({done} of {total} done)" if total else copier.kind
    return StoreError(f"copy into {shown_location(dst.location)!r} failed while copying {where}: "
                      f"error[{err.code}]: {err}; the destination was rolled back "
                      "(nothing of the copy is kept)")


def _guarded(store: Store, doing: str, read: Callable[[], Any]) -> Any:
    try:
        return read()
    except StoreError as err:
        raise StoreError(f"{doing} {shown_location(store.location)!r} failed: {err}") from err
