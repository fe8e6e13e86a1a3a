"""A second backend for the tests: plain Python dicts behind the Store protocol.

It exists to show that the contract suite and the ``Memory``-level tests depend on
the protocol, not on SQLite: ``pytest --store-backend dictstore:DictStore``.

Invariants:
    * Records are kept as the JSON text of their model (as SQLite does), so a
      reader never shares an object with the store.
    * One re-entrant lock and one state per location: stores opened on the same
      path share them (a reopened path sees what was written); ``":memory:"`` is
      private to one store. A transaction holds the lock, so other stores on the
      path wait until it commits or rolls back. A file location is also pickled
      at every outermost commit (so a copied file, or another process, reads it).
    * A transaction level keeps a shallow copy of the state (records are
      immutable text); an exception restores it. Every write method is itself one
      such level, so a failing batch leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import pickle
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from copy import copy
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from procmem.core.errors import (
    Conflict,
    ExecutionBusy,
    NotFound,
    StoreError,
    StoreUnavailable,
    UsageError,
)
from procmem.core.model import Evidence, Execution, Procedure, StepRun, Trace, utcnow
from procmem.core.procstats import ProcedureStats, RunOutcome
from procmem.formats.toolschema import schema_hash
from procmem.security.jobs import Job
from procmem.security.keys import ApiKey
from procmem.store import TraceChanges, index_text
from procmem.store.common import (
    check_alias,
    check_page,
    check_status,
    procedure_json,
    timestamp,
    trace_content,
    version_content,
)
from procmem.store.status import SerializedTransitions


def _current(versions: Iterable[Procedure]) -> Procedure | None:
    """The highest active version, else the highest deprecated, else the highest candidate."""
    return max(versions, default=None, key=lambda p: (p.status == "active",
                                                      p.status == "deprecated", p.version))


@dataclass
class _State:
    traces: dict[str, tuple[int, str]] = field(default_factory=dict)  # id -> (seq, json)
    seq: int = 0
    deletions: int = 0
    procedures: dict[tuple[str, int], str] = field(default_factory=dict)
    pinned: dict[str, bool] = field(default_factory=dict)
    verifications: dict[tuple[str, int], str] = field(default_factory=dict)
    executions: dict[str, tuple[int, str]] = field(default_factory=dict)  # id -> (seq, header)
    exec_seq: int = 0
    leases: dict[str, tuple[str, datetime]] = field(default_factory=dict)
    step_runs: dict[tuple[str, int], str] = field(default_factory=dict)
    evidence: list[str] = field(default_factory=list)
    index: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (status, text)
    revision: int = 0
    log: list[tuple[int, str]] = field(default_factory=list)
    snapshots: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    calibrations: dict[str, str] = field(default_factory=dict)
    embeddings: dict[tuple[str, str], bytes] = field(default_factory=dict)
    schemas: dict[str, tuple[str, str]] = field(default_factory=dict)  # name -> (hash, json)
    notes: list[dict[str, Any]] = field(default_factory=list)
    note_id: int = 0
    keys: dict[str, ApiKey] = field(default_factory=dict)  # its dump leaves out the hash
    aliases: dict[str, str] = field(default_factory=dict)  # old name -> new name
    jobs: dict[str, str] = field(default_factory=dict)  # id -> json
    store_id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def snapshot(self) -> _State:
        out = copy(self)
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, dict | list):
                setattr(out, f.name, copy(value))
        return out


class _Shared:
    """What every store opened on one location shares: the lock, the state, the depth."""

    def __init__(self, state: _State) -> None:
        self.lock = threading.RLock()
        self.state = state
        self.depth = 0


_SHARED: dict[str, _Shared] = {}
_SHARED_LOCK = threading.Lock()
_MAGIC = b"procmem-dictstore-1\n"


def _load(path: str) -> _State:
    """The state pickled at ``path`` (a new one when there is no file)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return _State()
    except OSError as err:
        raise StoreUnavailable(path, str(err)) from err
    if not data.startswith(_MAGIC):
        raise StoreUnavailable(path, "not a dictstore file")
    state = pickle.loads(data[len(_MAGIC):])  # noqa: S301 - our own test files
    assert isinstance(state, _State)
    return state


class DictStore(SerializedTransitions):
    """The Store protocol over dicts; ``DictStore(location)`` like ``SQLiteStore``.

    A file location is pickled at every commit, so a copied file is a copied store.
    """

    def __init__(self, location: str) -> None:
        self.location = str(location)
        if self.location == ":memory:":
            self._path: str | None = None
            self._shared = _Shared(_State())
        else:
            self._path = os.path.abspath(self.location)
            with _SHARED_LOCK:
                if self._path not in _SHARED:
                    _SHARED[self._path] = _Shared(_load(self._path))
                self._shared = _SHARED[self._path]
        self._closed = False

    @property
    def _s(self) -> _State:
        return self._shared.state

    @contextmanager
    def _read(self) -> Iterator[_State]:
        with self._shared.lock:
            if self._closed:
                raise StoreError(f"store {self.location!r} is closed")
            yield self._s

    @contextmanager
    def transaction(self) -> Iterator[DictStore]:
        """One level of a unit of work (see the protocol); nested levels are savepoints."""
        shared = self._shared
        with self._read():
            saved = self._s.snapshot()
            shared.depth += 1
            try:
                yield self
            except BaseException:
                shared.state = saved
                raise
            finally:
                shared.depth -= 1
            if shared.depth == 0 and self._path is not None:
                try:
                    with open(self._path, "wb") as f:
                        f.write(_MAGIC + pickle.dumps(shared.state))
                except OSError as err:
                    shared.state = saved
                    raise StoreError(f"cannot write {self._path}: {err}") from err

    @contextmanager
    def _write(self) -> Iterator[_State]:
        with self.transaction():
            yield self._s

    def close(self) -> None:
        self._closed = True

    # ------------------------------------------------------------------ traces

    def _trace_rows(self) -> list[tuple[int, str]]:
        return sorted(self._s.traces.values())

    def put_traces(self, traces: Iterable[Trace]) -> int:
        new = 0
        with self._write() as s:
            for t in traces:
                if t.id in s.traces:
                    stored = Trace.model_validate_json(s.traces[t.id][1])
                    if trace_content(stored) != trace_content(t):
                        raise Conflict("trace", t.id, "already stored with different content")
                    continue
                s.seq += 1
                s.traces[t.id] = (s.seq, t.model_dump_json(by_alias=True))
                new += 1
        return new

    def get_trace(self, trace_id: str) -> Trace:
        with self._read() as s:
            if trace_id not in s.traces:
                raise NotFound("trace", trace_id)
            return Trace.model_validate_json(s.traces[trace_id][1])

    def list_traces(self, *, limit: int = 100, offset: int = 0) -> list[Trace]:
        check_page(limit, offset)
        with self._read():
            rows = self._trace_rows()[offset:offset + limit]
        return [Trace.model_validate_json(j) for _, j in rows]

    def get_traces(self, trace_ids: Sequence[str]) -> list[Trace]:
        with self._read() as s:
            rows = sorted(s.traces[i] for i in set(trace_ids) if i in s.traces)
        return [Trace.model_validate_json(j) for _, j in rows]

    def count_traces(self) -> int:
        with self._read() as s:
            return len(s.traces)

    def get_tasks(self, trace_ids: Sequence[str]) -> dict[str, str]:
        with self._read() as s:
            return {i: Trace.model_validate_json(s.traces[i][1]).task
                    for i in dict.fromkeys(trace_ids) if i in s.traces}

    def delete_trace(self, trace_id: str) -> bool:
        with self._write() as s:
            if s.traces.pop(trace_id, None) is None:
                return False
            s.deletions += 1
            for name in sorted({p.name for p in self._versions() if trace_id in p.lineage.traces}):
                self._reindex(name)
        return True

    def traces_since(self, token: str | None, *, limit: int = 1000) -> TraceChanges:
        if limit < 1:
            raise UsageError(f"limit must be >= 1 (got {limit})")
        with self._read() as s:
            rows = self._trace_rows()
            after = None
            parts = (token or "").split(":", 3)
            if token is not None and len(parts) == 4 and parts[:2] == [s.store_id,
                                                                        str(s.deletions)]:
                at = {seq: Trace.model_validate_json(j).id for seq, j in rows}
                if parts[2] == "0" and parts[3] == "":
                    after = 0
                elif parts[2].isdigit() and at.get(int(parts[2])) == parts[3]:
                    after = int(parts[2])
            page = [(seq, j) for seq, j in rows if seq > (after or 0)][:limit]
            traces = [Trace.model_validate_json(j) for _, j in page]
            if page:
                next_token = f"{s.store_id}:{s.deletions}:{page[-1][0]}:{traces[-1].id}"
            elif after is not None and token is not None:
                next_token = token
            else:
                next_token = f"{s.store_id}:{s.deletions}:0:"
        return TraceChanges(traces, next_token, after is None)

    # -------------------------------------------------------------- procedures

    def _versions(self, name: str | None = None) -> list[Procedure]:
        return [Procedure.model_validate_json(j) for (n, _), j in sorted(self._s.procedures.items())
                if name is None or n == name]

    def _reindex(self, name: str) -> None:
        s = self._s
        s.revision += 1
        s.log.append((s.revision, name))
        proc = _current(self._versions(name))
        if proc is None:
            s.index.pop(name, None)
            return
        tasks = [Trace.model_validate_json(s.traces[t][1]).task
                 for t in dict.fromkeys(proc.lineage.traces) if t in s.traces]
        s.index[name] = (proc.status, index_text(proc, tasks))

    def put_procedure(self, procedure: Procedure) -> bool:
        key = (procedure.name, procedure.version)
        with self._write() as s:
            if key in s.procedures:
                stored = Procedure.model_validate_json(s.procedures[key])
                if version_content(stored) != version_content(procedure):
                    raise Conflict("procedure", procedure.key,
                                   "version already stored with different content")
                return False
            s.procedures[key] = procedure_json(procedure)
            self._reindex(procedure.name)
        return True

    def get_procedure(self, name: str, version: int | None = None) -> Procedure:
        with self._read() as s:
            if version is not None:
                if (name, version) not in s.procedures:
                    raise NotFound("procedure", f"{name}@{version}")
                return Procedure.model_validate_json(s.procedures[(name, version)])
            found = _current(self._versions(name))
        if found is None:
            raise NotFound("procedure", name)
        return found

    def get_procedures_json(self, names: Sequence[str]) -> dict[str, str]:
        with self._read():
            found = {n: _current(self._versions(n)) for n in dict.fromkeys(names)}
        return {n: procedure_json(p) for n, p in found.items() if p is not None}

    def count_procedures(self) -> int:
        with self._read() as s:
            return len({n for n, _ in s.procedures})

    def list_procedures(self, *, status: str | None = None, limit: int = 100,
                        offset: int = 0) -> list[Procedure]:
        check_page(limit, offset)
        if status is not None:
            check_status(status)
        with self._read() as s:
            current = [_current(self._versions(n)) for n in sorted({n for n, _ in s.procedures})]
        kept = [p for p in current if p is not None and (status is None or p.status == status)]
        return kept[offset:offset + limit]

    def list_versions(self, name: str) -> list[Procedure]:
        with self._read():
            found = sorted(self._versions(name), key=lambda p: p.version)
        if not found:
            raise NotFound("procedure", name)
        return found

    def list_versions_by_trace(self, trace_id: str) -> list[Procedure]:
        with self._read():
            return [p for p in self._versions() if trace_id in p.lineage.traces]

    def set_status(self, name: str, version: int, status: str) -> None:
        check_status(status)
        with self._write() as s:
            if (name, version) not in s.procedures:
                raise NotFound("procedure", f"{name}@{version}")
            p = Procedure.model_validate_json(s.procedures[(name, version)])
            s.procedures[(name, version)] = procedure_json(p.model_copy(update={"status": status}))
            self._reindex(name)

    def delete_procedure(self, name: str) -> bool:
        with self._write() as s:
            keys = [k for k in s.procedures if k[0] == name]
            for k in keys:
                del s.procedures[k]
            s.pinned.pop(name, None)
            s.verifications = {k: v for k, v in s.verifications.items() if k[0] != name}
            s.notes = [n for n in s.notes if n["name"] != name]
            self._reindex(name)
        return bool(keys)

    def rename_procedure(self, old: str, new: str) -> int:
        if old == new:
            raise UsageError(f"cannot rename {old!r} to itself")
        with self._write() as s:
            if any(n == new for n, _ in s.procedures):
                raise Conflict("procedure", new, "the name is taken")
            keys = [k for k in s.procedures if k[0] == old]
            if not keys:
                raise NotFound("procedure", old)
            for k in keys:
                p = Procedure.model_validate_json(s.procedures.pop(k))
                s.procedures[(new, k[1])] = procedure_json(p.model_copy(update={"name": new}))
            for eid, (seq, header) in list(s.executions.items()):
                e = Execution.model_validate_json(header)
                if e.procedure == old:
                    s.executions[eid] = (seq, e.model_copy(update={"procedure": new})
                                         .model_dump_json(by_alias=True, exclude={"step_runs"}))
            if old in s.pinned:
                s.pinned[new] = s.pinned.pop(old)
            s.verifications = {((new if n == old else n), v): r
                               for (n, v), r in s.verifications.items()}
            s.notes = [{**n, "name": new} if n["name"] == old else n for n in s.notes]
            s.aliases.pop(new, None)
            s.aliases = {o: (new if n == old else n) for o, n in s.aliases.items()}
            s.aliases[old] = new
            self._reindex(old)
            self._reindex(new)
        return len(keys)

    def resolve_alias(self, name: str) -> str | None:
        with self._read() as s:
            return s.aliases.get(name)

    def list_aliases(self) -> dict[str, str]:
        with self._read() as s:
            return dict(sorted(s.aliases.items()))

    def put_alias(self, old: str, new: str) -> None:
        check_alias(old, new)
        with self._write() as s:
            for o, n in s.aliases.items():
                if o == new or n == old:
                    raise UsageError(f"alias {old!r} -> {new!r} would chain with the alias "
                                     f"{o!r} -> {n!r}")
            s.aliases[old] = new

    def set_pinned(self, name: str, pinned: bool) -> None:
        with self._write() as s:
            if not any(n == name for n, _ in s.procedures):
                raise NotFound("procedure", name)
            s.pinned[name] = pinned

    def is_pinned(self, name: str) -> bool:
        with self._read() as s:
            return s.pinned.get(name, False)

    def put_verification(self, name: str, version: int, record: dict[str, Any]) -> None:
        with self._write() as s:
            if (name, version) not in s.procedures:
                raise NotFound("procedure", f"{name}@{version}")
            s.verifications[(name, version)] = json.dumps(record, default=str)

    def get_verification(self, name: str, version: int) -> dict[str, Any] | None:
        with self._read() as s:
            text = s.verifications.get((name, version))
        return None if text is None else json.loads(text)

    # -------------------------------------------------------------- executions

    def put_execution(self, execution: Execution) -> None:
        header = execution.model_dump_json(by_alias=True, exclude={"step_runs"})
        with self._write() as s:
            if execution.id in s.executions:
                seq = s.executions[execution.id][0]
            else:
                s.exec_seq += 1
                seq = s.exec_seq
            s.executions[execution.id] = (seq, header)
            if execution.status != "running":
                s.leases.pop(execution.id, None)

    def put_step_run(self, execution_id: str, step_run: StepRun) -> None:
        with self._write() as s:
            if execution_id not in s.executions:
                raise NotFound("execution", execution_id)
            s.step_runs[(execution_id, step_run.index)] = step_run.model_dump_json(by_alias=True)

    def _execution(self, execution_id: str) -> Execution:
        s = self._s
        runs = [StepRun.model_validate_json(j) for (e, _), j in sorted(s.step_runs.items())
                if e == execution_id]
        return Execution.model_validate_json(s.executions[execution_id][1]).model_copy(
            update={"step_runs": runs})

    def get_execution(self, execution_id: str) -> Execution:
        with self._read() as s:
            if execution_id not in s.executions:
                raise NotFound("execution", execution_id)
            return self._execution(execution_id)

    def list_executions(self, *, procedure: str | None = None, limit: int = 100,
                        offset: int = 0) -> list[Execution]:
        check_page(limit, offset)
        with self._read() as s:
            headers = [(Execution.model_validate_json(h), seq) for seq, h in s.executions.values()]
            kept = [(e, seq) for e, seq in headers if procedure is None or e.procedure == procedure]
            kept.sort(key=lambda es: (timestamp(es[0].started_at), es[1]), reverse=True)
            return [self._execution(e.id) for e, _ in kept[offset:offset + limit]]

    def put_evidence(self, evidence: Evidence) -> None:
        with self._write() as s:
            s.evidence.append(evidence.model_dump_json(by_alias=True))

    def list_evidence(self, execution_id: str | None = None, *,
                      procedure: str | None = None) -> list[Evidence]:
        with self._read() as s:
            rows = [Evidence.model_validate_json(j) for j in s.evidence]
            mine = {i for i, (_, h) in s.executions.items()
                    if Execution.model_validate_json(h).procedure == procedure}
        rows = [e for e in rows if (execution_id is None or e.execution_id == execution_id)
                and (procedure is None or e.execution_id in mine)]
        return sorted(rows, key=lambda e: timestamp(e.created_at))  # stable: append order

    # ------------------------------------------------------------------ leases

    def acquire_lease(self, execution_id: str, owner: str, *, lease_s: float,
                      now: datetime | None = None) -> datetime:
        if not owner or not lease_s > 0:
            raise UsageError(f"a lease needs an owner and lease_s > 0 (got {owner!r}, {lease_s})")
        moment = now or utcnow()
        with self._write() as s:
            if execution_id not in s.executions:
                raise NotFound("execution", execution_id)
            held = s.leases.get(execution_id)
            if held is not None and held[0] != owner and held[1] > moment:
                raise ExecutionBusy(execution_id, held[0], held[1])
            until = moment + timedelta(seconds=lease_s)
            s.leases[execution_id] = (owner, until)
            return until

    def release_lease(self, execution_id: str, owner: str) -> bool:
        with self._write() as s:
            held = s.leases.get(execution_id)
            if held is None or held[0] != owner:
                return False
            del s.leases[execution_id]
            return True

    # ------------------------------------------------------------ search index

    def index_documents(self, status: str | None = "active") -> list[tuple[str, str]]:
        with self._read() as s:
            return [(n, text) for n, (st, text) in sorted(s.index.items())
                    if status is None or st == status]

    def index_status(self) -> dict[str, str]:
        with self._read() as s:
            return {n: st for n, (st, _) in s.index.items()}

    def index_revision(self) -> int:
        with self._read() as s:
            return s.revision

    def index_changes(self, since: int) -> list[str] | None:
        if since < 0:  # the log starts at revision 0: it does not reach back further
            return None
        with self._read() as s:
            names = sorted({n for rev, n in s.log if rev > since})
        return None if "*" in names else names

    def index_entries(self, names: Sequence[str]) -> dict[str, tuple[str, str]]:
        with self._read() as s:
            return {n: s.index[n] for n in dict.fromkeys(names) if n in s.index}

    def get_index_snapshot(self, key: str) -> tuple[int, bytes] | None:
        with self._read() as s:
            return s.snapshots.get(key)

    def put_index_snapshot(self, key: str, revision: int, data: bytes) -> None:
        if not key:
            raise UsageError("an index snapshot needs a key")
        with self._write() as s:
            s.snapshots[key] = (revision, bytes(data))

    def delete_index_snapshots(self, key: str | None = None) -> int:
        with self._write() as s:
            gone = [k for k in s.snapshots if key is None or k == key]
            for k in gone:
                del s.snapshots[k]
            return len(gone)

    def get_calibration(self, key: str) -> str | None:
        with self._read() as s:
            return s.calibrations.get(key)

    def list_calibration_keys(self) -> list[str]:
        with self._read() as s:
            return sorted(s.calibrations)

    def list_procedure_names(self) -> list[str]:
        with self._read() as s:
            return sorted({n for n, _ in s.procedures})

    def put_calibration(self, key: str, text: str) -> None:
        if not key:
            raise UsageError("a calibration needs a key")
        with self._write() as s:
            s.calibrations[key] = text

    # -------------------------------------------------------------- embeddings

    def get_embeddings(self, model_id: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        with self._read() as s:
            return {h: np.frombuffer(s.embeddings[(model_id, h)], dtype="<f4")
                    for h in dict.fromkeys(hashes) if (model_id, h) in s.embeddings}

    def put_embeddings(self, model_id: str, vectors: Mapping[str, np.ndarray]) -> int:
        if not model_id:
            raise UsageError("an embedding needs a model id")
        shapes = {np.asarray(v).shape for v in vectors.values()}
        if len(shapes) > 1 or any(len(d) != 1 for d in shapes):
            raise UsageError(f"embeddings of {model_id!r} must be 1-D of one length, got {shapes}")
        with self._write() as s:
            for h, v in vectors.items():
                s.embeddings[(model_id, h)] = np.asarray(v, dtype="<f4").tobytes()
        return len(vectors)

    def list_embedding_hashes(self, model_id: str) -> list[str]:
        with self._read() as s:
            return sorted(h for m, h in s.embeddings if m == model_id)

    def count_embeddings(self) -> dict[str, int]:
        with self._read() as s:
            counts: dict[str, int] = {}
            for model, _ in s.embeddings:
                counts[model] = counts.get(model, 0) + 1
        return dict(sorted(counts.items()))

    def delete_embeddings(self, model_id: str | None = None) -> int:
        with self._write() as s:
            gone = [k for k in s.embeddings if model_id is None or k[0] == model_id]
            for k in gone:
                del s.embeddings[k]
            return len(gone)

    # ------------------------------------------------------------ tool schemas

    def put_tool_schemas(self, schemas: Mapping[str, Mapping[str, Any]], *,
                         notes: Mapping[str, Sequence[tuple[str, Mapping[str, Any]]]] | None
                         = None) -> dict[str, str]:
        status: dict[str, str] = {}
        with self._write() as s:
            for name, schema in schemas.items():
                if not isinstance(name, str) or not name:
                    raise UsageError(f"a tool schema needs a non-empty name, got {name!r}")
                try:
                    text = json.dumps(schema, ensure_ascii=False, allow_nan=False)
                except (TypeError, ValueError) as err:
                    raise UsageError(f"tool {name!r}: schema is not JSON: {err}") from err
                digest = schema_hash(schema)
                old = s.schemas.get(name)
                if old is not None and old[0] == digest:
                    status[name] = "unchanged"
                    continue
                s.schemas[name] = (digest, text)
                status[name] = "added" if old is None else "changed"
                for procedure, record in (notes or {}).get(name, ()):
                    self._add_note(procedure, "tool_schema", record)
            if any(v != "unchanged" for v in status.values()):
                s.revision += 1
                s.log.append((s.revision, "*"))
        return status

    def find_tool_schema(self, name: str) -> dict[str, Any] | None:
        with self._read() as s:
            found = s.schemas.get(name)
        return None if found is None else json.loads(found[1])

    def list_tool_schemas(self) -> dict[str, dict[str, Any]]:
        with self._read() as s:
            return {n: json.loads(t) for n, (_, t) in sorted(s.schemas.items())}

    def _add_note(self, name: str, kind: str, record: Mapping[str, Any]) -> None:
        s = self._s
        if not any(n == name for n, _ in s.procedures):
            raise NotFound("procedure", name)
        s.note_id += 1
        s.notes = [*s.notes, {"id": s.note_id, "name": name, "kind": kind,
                              "created_at": timestamp(utcnow()),
                              "record": json.dumps(record, default=str)}]

    def add_procedure_note(self, name: str, kind: str, record: Mapping[str, Any]) -> None:
        with self._write():
            self._add_note(name, kind, record)

    def list_procedure_notes(self, name: str | None = None, *,
                             kind: str | None = None) -> list[dict[str, Any]]:
        with self._read() as s:
            return [{**n, "record": json.loads(n["record"])} for n in s.notes
                    if (name is None or n["name"] == name) and (kind is None or n["kind"] == kind)]

    def delete_procedure_notes(self, name: str | None = None, *, kind: str | None = None) -> int:
        with self._write() as s:
            kept = [n for n in s.notes if not ((name is None or n["name"] == name)
                                               and (kind is None or n["kind"] == kind))]
            gone, s.notes = len(s.notes) - len(kept), kept
            return gone

    # -------------------------------------------------------------------- keys

    def put_api_key(self, key: ApiKey) -> None:
        with self._write() as s:
            if key.id in s.keys:
                raise Conflict("API key", key.id, "already stored")
            s.keys[key.id] = key.model_copy()

    def find_api_key(self, key_id: str) -> ApiKey | None:
        with self._read() as s:
            key = s.keys.get(key_id)
        return None if key is None else key.model_copy()

    def list_api_keys(self, tenant: str | None = None) -> list[ApiKey]:
        with self._read() as s:
            keys = [k.model_copy() for k in s.keys.values()]
        keys = [k for k in keys if tenant is None or k.tenant == tenant]
        return sorted(keys, key=lambda k: (timestamp(k.created_at), k.id))

    def revoke_api_key(self, key_id: str) -> bool:
        with self._write() as s:
            key = s.keys.get(key_id)
            if key is None or key.revoked_at is not None:
                return False
            s.keys[key_id] = key.model_copy(update={"revoked_at": utcnow()})
            return True

    # -------------------------------------------------------------------- jobs

    def put_job(self, job: Job) -> None:
        with self._write() as s:
            s.jobs[job.id] = job.model_dump_json()

    def get_job(self, job_id: str) -> Job | None:
        with self._read() as s:
            text = s.jobs.get(job_id)
        return None if text is None else Job.model_validate_json(text)

    def list_jobs(self, *, limit: int = 100) -> list[Job]:
        if limit < 1:
            raise UsageError(f"limit must be positive (got {limit})")
        with self._read() as s:
            jobs = [Job.model_validate_json(t) for t in s.jobs.values()]
        jobs.sort(key=lambda j: (timestamp(j.created_at), j.id), reverse=True)
        return jobs[:limit]

    def prune_jobs(self, keep: int) -> int:
        if keep < 0:
            raise UsageError(f"keep must not be negative (got {keep})")
        finished = [j for j in self.list_jobs(limit=1 << 30)
                    if j.status in ("succeeded", "failed")]
        with self._write() as s:
            for job in finished[keep:]:
                del s.jobs[job.id]
        return len(finished[keep:])

    # ------------------------------------------------------------- statistics

    def procedure_stats(self, names: Sequence[str]) -> dict[tuple[str, int], ProcedureStats]:
        """Counters recomputed from the executions on each read (a test backend may)."""
        out: dict[tuple[str, int], ProcedureStats] = {}
        with self._read() as s:
            runs = [Execution.model_validate_json(h) for _, h in s.executions.values()]
        wanted = set(names)
        for e in runs:
            if e.procedure not in wanted or e.parent_id is not None:
                continue
            key = (e.procedure, e.version)
            old = out.get(key, ProcedureStats())
            done = e.status in ("succeeded", "failed")
            last = old.last_executed_at
            out[key] = ProcedureStats(
                runs=old.runs + 1, finished=old.finished + done,
                succeeded=old.succeeded + (e.status == "succeeded"),
                duration_ms=old.duration_ms + (e.duration_ms or 0.0 if done else 0.0),
                last_executed_at=e.started_at if last is None else max(last, e.started_at))
        return out

    def recent_outcomes(self, names: Sequence[str], *, window: int) -> list[RunOutcome]:
        if window < 1:
            raise UsageError(f"window must be >= 1, got {window}")
        out: list[RunOutcome] = []
        for name in sorted(set(names)):
            for e in self.list_executions(procedure=name, limit=window):
                evidence = tuple((ev.source, float(ev.reward))
                                 for ev in self.list_evidence(e.id))
                out.append(RunOutcome(e.id, e.procedure, e.version, e.status, e.parent_id,
                                      evidence))
        return out
