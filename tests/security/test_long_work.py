"""Long work (learn, optimize) never holds the server's other requests (issue "Secure by
default"): it runs on its own connection to the store, and /health only asks the store."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from keyed import rest_client
from procmem.memory import Memory
from procmem.model import Trace, TraceStep


def _traces() -> list[Trace]:
    return [Trace(task=f"Cancel order #W{n:07d} because no longer needed.", outcome="success",
                  steps=[TraceStep(action="cancel_pending_order",
                                   args={"order_id": f"#W{n:07d}"}, output="ok")])
            for n in range(1000001, 1000004)]


@pytest.mark.parametrize("route", ["/learn", "/optimize"])
def test_health_and_reads_answer_while_learn_or_optimize_runs(
        route: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "m.db"
    with Memory(db, embedder=None) as seed:
        seed.learn(_traces())
    started, release = threading.Event(), threading.Event()
    method = route.strip("/")
    original = getattr(Memory, method)

    def held(self: Memory, *args: Any, **kwargs: Any) -> Any:
        started.set()
        assert release.wait(30), "the test never released the long work"
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Memory, method, held)
    with rest_client(Memory(db, embedder=None)) as client:
        done: dict[str, Any] = {}
        worker = threading.Thread(target=lambda: done.update(r=client.post(route)))
        worker.start()
        try:
            assert started.wait(30)
            # the long work is in progress (held): other requests still answer
            assert client.get("/health").status_code == 200
            listed = client.get("/procedures")
            assert listed.status_code == 200 and listed.json()
            assert not done  # still running
        finally:
            release.set()
            worker.join(30)
        assert done["r"].status_code == 200, done["r"].text
