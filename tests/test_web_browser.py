"""The web UI in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

Marked ``browser``; skipped with the reason when Chromium or Playwright is missing
(``.ci/run`` installs both). The server is uvicorn in a thread on a free loopback
port; nothing leaves the machine (the browser is started without background
networking). Screenshots go to the test's tmp dir, and to ``$PROCMEM_SCREENSHOTS``
when set (CI keeps them as artifacts).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from procmem.memory import Memory
from procmem.rest.app import create_app
from webui_store import FLOW, build_store, some_execution

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("PROCMEM_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="Playwright is not installed (pip install playwright)")
expect = sync_api.expect


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tau_sample_path: Path
           ) -> Iterator[dict[str, Any]]:
    import uvicorn

    path = build_store(tmp_path_factory.mktemp("browser"), tau_sample_path)
    mem = Memory(path, embedder=None)
    app = create_app(mem)
    _, key = app.state.tenants.keyring().create(tenant="default", scopes=("read", "write",
                                                                            "run"), name="ui")
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield {"url": f"http://127.0.0.1:{port}", "key": key, "mem": mem}
    srv.should_exit = True
    thread.join(10)
    mem.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture
def shots(tmp_path: Path, lane_environ: dict[str, str]) -> Iterator[Any]:
    extra = lane_environ.get("PROCMEM_SCREENSHOTS")  # read before clean_environ ran

    def take(page: Any, name: str) -> Path:
        out = tmp_path / f"{name}.png"
        page.screenshot(path=str(out), full_page=True)
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            shutil.copy(out, Path(extra) / out.name)
        return out
    yield take


def test_sign_in_browse_search_and_act(server: dict[str, Any], browser: Any, shots: Any) -> None:
    mem: Memory = server["mem"]
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    offsite: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(server["url"])
            else offsite.append(r.url))

    page.goto(server["url"] + "/")
    assert page.url.endswith("/ui/login?next=/ui/")
    shots(page, "login")
    page.fill("#key", server["key"])
    page.click("#login button[type=submit]")
    page.wait_for_url(server["url"] + "/ui/")

    # procedures table, and filtering as you type
    rows = page.locator("#procedures tbody tr[data-filter]")
    assert rows.count() == len(mem.list_procedures(limit=1000))
    page.fill("#filter-text", "lookup_then")
    assert page.locator("#procedures tbody tr[data-filter]:visible").count() == 1
    page.fill("#filter-text", "")

    # search: the same hits as Memory.search, with bound values
    task = mem.get_trace(mem.get_procedure("cancel_pending_order").lineage.traces[0]).task
    page.fill("input[name=q]", task)
    page.click("form[action='/ui/'] button:has-text('Search')")
    page.wait_for_selector("li.hit")
    names = page.locator("li.hit > div:first-child > a b").all_inner_texts()
    assert names == [h.procedure.name for h in mem.search(task, limit=5)]
    assert page.locator("table.bound caption").first.inner_text().startswith(
        "Values bound for this task")
    shots(page, "procedures")

    # a procedure: its flow diagram
    page.goto(f"{server['url']}/ui/procedures/{FLOW}")
    diagram = page.locator("#diagram svg.flow")
    assert diagram.is_visible()
    assert diagram.locator("g.step").count() == 3
    assert diagram.locator("path.step-edge").count() == 2
    assert diagram.locator("a[href='/ui/procedures/cancel_pending_order']").count() == 1

    # an action asks first: cancelling changes nothing
    page.click("#actions button:has-text('Pin')")
    assert page.locator("dialog#confirm").is_visible()
    page.click("#confirm-cancel")
    expect(page.locator("#flash")).to_contain_text("Cancelled: nothing changed")
    assert not mem.store.is_pinned(FLOW)
    # promote the candidate, confirmed
    page.click("#versions button:has-text('Promote')")
    assert "Promote candidate v2" in page.locator("#confirm-text").inner_text()
    page.click("#confirm-ok")
    expect(page.locator("#flash.good")).to_contain_text("promoted")
    assert [h["status"] for h in mem.history(FLOW)] == ["deprecated", "active"]
    page.goto(f"{server['url']}/ui/procedures/{FLOW}")
    # roll back to v1, confirmed
    page.click("#versions button:has-text('Roll back to v1')")
    page.click("#confirm-ok")
    expect(page.locator("#flash.good")).to_contain_text("now current")
    assert mem.get_procedure(FLOW).lineage.reason == "rollback to version 1"
    page.goto(f"{server['url']}/ui/procedures/{FLOW}")
    shots(page, "procedure")

    # rename, confirmed with the new name: the page moves to it, the old name is an alias
    renamed = f"{FLOW}_renamed"
    page.click("#actions button:has-text('Rename')")
    assert page.locator("dialog#confirm").is_visible()
    page.fill("#prompt-input", renamed)
    page.click("#confirm-ok")
    page.wait_for_url(f"{server['url']}/ui/procedures/{renamed}")
    assert renamed in page.locator("h1").first.inner_text()
    assert mem.get_procedure(FLOW).name == renamed  # the old name resolves to the new one
    assert [p.name for p in mem.list_procedures(limit=1000)].count(FLOW) == 0

    # an execution timeline
    ex = some_execution(mem)
    page.goto(f"{server['url']}/ui/executions/{ex.id}")
    assert page.locator("#timeline svg.timeline rect.bar").count() >= len(ex.step_runs)
    assert page.locator("#step-runs .steprun").count() == len(ex.step_runs)
    shots(page, "execution")
    assert offsite == []
    page.close()
