"""Make the web UI screenshots in docs/img (README, "Web UI").

Usage (Debian's chromium and ``pip install playwright``; no browser download):

    PYTHONPATH=src python scripts/webui_screenshots.py docs/img

Learns the bundled τ-retail sample into a temporary store (tests/webui_store.py),
runs the hand-written ``lookup_then_cancel`` 24 times against fake tools (a quarter
of them fail) with environment evidence, serves the app on a free loopback port and
takes four screenshots: procedures, search, a procedure, a failed execution.
"""

from __future__ import annotations

import random
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


def main(out: Path) -> None:
    import uvicorn
    from playwright.sync_api import sync_playwright

    from procmem.memory import Memory
    from procmem.rest.app import create_app
    from webui_store import FLOW, build_store

    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as folder:
        mem = Memory(build_store(Path(folder), ROOT / "tests/data/tau_retail_sample.jsonl"),
                     embedder=None)
        for i in range(24):
            fail = rng.random() < 0.25

            def get_order_details(order_id: str) -> dict[str, Any]:
                time.sleep(rng.uniform(0.01, 0.04))
                return {"order_id": order_id, "status": "pending"}

            def cancel_pending_order(order_id: str, reason: str,
                                     fail: bool = fail) -> dict[str, Any]:
                time.sleep(rng.uniform(0.02, 0.08))
                if fail:
                    raise RuntimeError("LookupError: order is not pending")
                return {"order_id": order_id, "status": "cancelled"}

            ex = mem.replay(FLOW, tools={"get_order_details": get_order_details,
                                         "cancel_pending_order": cancel_pending_order},
                            params={"order_id": f"#W{1000000 + i}", "reason": "no longer needed"})
            mem.report(ex.id, reward=1.0 if ex.status == "succeeded" else 0.0,
                       source="environment")
        app = create_app(mem)
        _, key = app.state.tenants.keyring().create(tenant="default",
                                                    scopes=("read", "write", "run"), name="docs")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
            page = browser.new_page(viewport={"width": 1200, "height": 860})
            page.goto(url + "/ui/login")
            page.fill("#key", key)
            page.click("#login button[type=submit]")
            page.wait_for_url(url + "/ui/")
            page.screenshot(path=str(out / "webui-procedures.png"))
            task = mem.get_trace(mem.get_procedure("cancel_pending_order_x2")
                                 .lineage.traces[0]).task
            page.fill("input[name=q]", task)
            page.click("form[action='/ui/'] button:has-text('Search')")
            page.wait_for_selector("li.hit")
            page.screenshot(path=str(out / "webui-search.png"))
            page.set_viewport_size({"width": 1200, "height": 1080})
            page.goto(f"{url}/ui/procedures/{FLOW}")
            page.screenshot(path=str(out / "webui-procedure.png"))
            page.set_viewport_size({"width": 1200, "height": 860})
            failed = next(e for e in mem.list_executions(procedure=FLOW, limit=50)
                          if e.status == "failed")
            page.goto(f"{url}/ui/executions/{failed.id}")
            page.screenshot(path=str(out / "webui-execution.png"))
            browser.close()
        server.should_exit = True
        mem.close()


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img"))
