"""The web UI (procmem.web): pages, sign-in, tenants, scopes, CSRF and actions,
over a store learned from the τ-retail sample (hermetic: TestClient, no network)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html import unescape
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from procmem.formats.serialize import hit_record
from procmem.memory import Memory
from procmem.rest.app import create_app
from procmem.security.keys import SCOPES
from procmem.web.svg import flow_of
from webui_store import FLOW, build_store, copy_store, some_execution

BASE = "http://127.0.0.1:8765"
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, tau_sample_path: Path) -> Path:
    return build_store(tmp_path_factory.mktemp("webui"), tau_sample_path)


@pytest.fixture
def mem(built: Path, tmp_path: Path) -> Iterator[Memory]:
    with Memory(copy_store(built, tmp_path), embedder=None) as m:
        yield m


def client(mem: Memory, *, scopes: tuple[str, ...] = SCOPES, tenant: str = "default",
           sign_in: bool = True, base: str = BASE) -> TestClient:
    app = create_app(mem)
    _, key = app.state.tenants.keyring().create(tenant=tenant, scopes=scopes, name="ui")
    c = TestClient(app, base_url=base)
    c.key = key  # type: ignore[attr-defined]
    if sign_in:
        r = c.post("/ui/session", headers={**JSON, "Authorization": f"Bearer {key}"},
                   content="{}")
        assert r.status_code == 200, r.text
    return c


def post(c: TestClient, path: str, body: dict[str, object], *, csrf: bool = True):  # noqa: ANN201
    headers = dict(JSON)
    if csrf:
        headers["X-CSRF-Token"] = c.cookies.get("procmem_csrf", path="/ui") or ""
    return c.post(path, json=body, headers=headers)


def text(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


# ------------------------------------------------------------------ sign-in


def test_no_cookie_gets_the_sign_in_page(mem: Memory) -> None:
    c = client(mem, sign_in=False)
    r = c.get("/ui/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/ui/login?next=/ui/"
    assert c.get("/", follow_redirects=False).headers["location"] == "/ui/"
    login = c.get("/ui/login")
    assert login.status_code == 200 and 'id="login"' in login.text
    assert mem.list_procedures()[0].name not in login.text  # no data before signing in
    # actions and the REST API answer 401 without a key (with a CSRF token)
    c.get("/ui/login")
    r = post(c, f"/ui/api/procedures/{FLOW}/pin", {"pinned": True})
    assert r.status_code == 401
    assert not mem.store.is_pinned(FLOW)


def test_sign_in_sets_strict_httponly_cookies_and_a_bad_key_is_refused(mem: Memory) -> None:
    c = client(mem, sign_in=False)
    r = c.post("/ui/session", headers={**JSON, "Authorization": f"Bearer {c.key}"},  # type: ignore[attr-defined]
               content="{}")
    cookies = r.headers.get_list("set-cookie")
    key_cookie = next(v for v in cookies if v.startswith("procmem_key="))
    for part in ("HttpOnly", "SameSite=Strict", "Path=/ui"):
        assert part in key_cookie
    assert "Secure" not in key_cookie  # plain http on loopback
    assert r.json()["tenant"] == "default"
    bad = c.post("/ui/session", headers={**JSON, "Authorization": "Bearer pmk_nope_nope"},
                 content="{}")
    assert bad.status_code == 401
    https = client(mem, sign_in=False, base="https://127.0.0.1:8765")
    r = https.post("/ui/session", headers={**JSON, "Authorization": f"Bearer {https.key}"},  # type: ignore[attr-defined]
                   content="{}")
    assert all("Secure" in v for v in r.headers.get_list("set-cookie"))


def test_a_revoked_key_cookie_is_cleared_and_sent_to_sign_in(mem: Memory) -> None:
    c = client(mem)
    assert c.get("/ui/").status_code == 200
    keyring = c.app.state.tenants.keyring()  # type: ignore[attr-defined]
    key_id = c.key.split("_")[1]  # type: ignore[attr-defined]
    keyring.revoke(key_id, tenant="default")
    r = c.get("/ui/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login")
    assert any(v.startswith("procmem_key=;") and "Max-Age=0" in v
               for v in r.headers.get_list("set-cookie"))


def test_sign_out_clears_the_cookies(mem: Memory) -> None:
    c = client(mem)
    r = post(c, "/ui/logout", {})
    assert r.status_code == 200
    assert c.get("/ui/", follow_redirects=False).status_code == 303


# ------------------------------------------------------------------ pages


def test_procedures_table_lists_every_procedure_with_reliability(mem: Memory) -> None:
    c = client(mem)
    r = c.get("/ui/")
    assert r.status_code == 200
    assert "default-src 'none'" in r.headers["content-security-policy"]
    page = text(r.text)
    stats = {s.name: s for s in mem.stats()}
    for proc in mem.list_procedures(limit=1000):
        assert proc.name in page
        st = stats[proc.name]
        assert f"{st.reliability:.2f} ({st.reliability_lower:.2f}–{st.reliability_upper:.2f})" \
            in page
    active = c.get("/ui/", params={"status": "active"}).text
    assert f'href="/ui/procedures/{FLOW}"' in active
    assert "<tr data-filter=" not in c.get("/ui/", params={"status": "deprecated"}).text
    found = c.get("/ui/", params={"text": "lookup_then"}).text
    assert found.count('<tr data-filter=') == 1


def test_search_shows_the_cli_hits_with_explanation_and_bound_values(mem: Memory) -> None:
    task = mem.get_trace(mem.get_procedure("cancel_pending_order").lineage.traces[0]).task
    c = client(mem)
    page = c.get("/ui/", params={"q": task}).text
    hits = [hit_record(i, h) for i, h in enumerate(mem.search(task, limit=5), 1)]
    assert hits
    names = re.findall(r'<li class="hit">\s*<div><a href="/ui/procedures/([^"]+)"', page)
    assert names == [h["name"] for h in hits]  # the same hits, in the same order
    plan = mem.plan(task, procedure=mem.search(task, limit=1)[0])
    assert unescape(plan.summary) in unescape(page)
    for value in plan.params:
        if value.known and isinstance(value.value, str):
            assert value.value in unescape(page)
    assert "matched terms" in page


def test_procedure_page_draws_the_flow_and_history(mem: Memory) -> None:
    c = client(mem)
    r = c.get(f"/ui/procedures/{FLOW}")
    assert r.status_code == 200
    html = r.text
    proc = mem.get_procedure(FLOW)
    diagram = html[html.index('<svg class="flow"'):]
    diagram = diagram[:diagram.index("</svg>")]
    for step in proc.steps:
        assert f'data-step="{step.id}"' in diagram
    for edge in flow_of(proc).edges:
        if edge.source.startswith("step:"):
            assert unescape(edge.label) in unescape(diagram)
    assert "/order_id → /order_id" in unescape(diagram)
    assert '<a href="/ui/procedures/cancel_pending_order">' in diagram  # the sub-procedure
    assert "$order_id" in diagram and "$reason" in diagram  # params as input nodes
    assert "diff v1 → v2" in unescape(html)  # versions with their diffs
    for line in mem.diff(FLOW, 1, 2):
        assert line in unescape(html)
    assert "p50 duration per step" in html and "failed tries per step" in html
    assert "reliability of v1 over its runs" in html


def test_lineage_links_to_trace_pages(mem: Memory) -> None:
    c = client(mem)
    proc = mem.get_procedure("cancel_pending_order")
    html = c.get("/ui/procedures/cancel_pending_order").text
    for trace_id in proc.lineage.traces:
        assert f'href="/ui/traces/{trace_id}"' in html
    trace = c.get(f"/ui/traces/{proc.lineage.traces[0]}").text
    assert unescape(mem.get_trace(proc.lineage.traces[0]).task) in unescape(trace)
    assert 'href="/ui/procedures/cancel_pending_order?version=1"' in trace


def test_execution_page_shows_runs_sources_and_needs(mem: Memory) -> None:
    c = client(mem)
    ex = some_execution(mem)
    html = c.get(f"/ui/executions/{ex.id}").text
    assert 'class="chart timeline"' in html
    for run in ex.step_runs:
        assert f"{run.step_id} <span class=\"muted\">{run.action}" in html
        for source in run.sources.values():
            if source.startswith("param:"):
                assert f"param {source[6:]}," in html
    paused = next(e for e in mem.list_executions(limit=100) if e.needs)
    page = unescape(c.get(f"/ui/executions/{paused.id}").text)
    assert "Waiting for" in page
    for need in paused.needs:
        assert need.key in page and need.prompt in page
    listing = c.get("/ui/executions").text
    assert f'href="/ui/executions/{ex.id}"' in listing


def test_missing_things_are_404_pages(mem: Memory) -> None:
    c = client(mem)
    for path in ("/ui/procedures/no_such_thing", "/ui/executions/ex_nope", "/ui/traces/tr_nope"):
        r = c.get(path)
        assert r.status_code == 404 and "not_found" in r.text


def test_no_page_loads_anything_from_another_site(mem: Memory) -> None:
    c = client(mem)
    ex = some_execution(mem)
    proc = mem.get_procedure("cancel_pending_order")
    paths = ["/ui/", "/ui/login", f"/ui/procedures/{FLOW}", "/ui/procedures/cancel_pending_order",
             f"/ui/executions/{ex.id}", "/ui/executions", f"/ui/traces/{proc.lineage.traces[0]}",
             "/ui/?q=cancel+order", "/ui/static/app.css", "/ui/static/app.js"]
    for path in paths:
        body = c.get(path).text
        refs = re.findall(r'(?:src|href|action)\s*=\s*["\']([^"\']*)', body)
        assert refs or path.startswith("/ui/static")
        for ref in refs:
            assert ref.startswith("/") and not ref.startswith("//"), (path, ref)
        assert not re.search(r"url\(\s*['\"]?(https?:)?//", body), path
        assert not re.search(r"@import", body), path


# ------------------------------------------------------------------ tenants and scopes


def test_another_tenant_sees_nothing(mem: Memory) -> None:
    c = client(mem, tenant="acme")
    page = c.get("/ui/").text
    assert "No procedure yet" in page
    assert FLOW not in page
    assert c.get(f"/ui/procedures/{FLOW}").status_code == 404
    assert c.get(f"/ui/executions/{some_execution(mem).id}").status_code == 404
    r = post(c, f"/ui/api/procedures/{FLOW}/pin", {"pinned": True})
    assert r.status_code == 404
    assert not mem.store.is_pinned(FLOW)


def test_read_only_key_sees_no_action_and_is_refused(mem: Memory) -> None:
    c = client(mem, scopes=("read",))
    proc_page = c.get(f"/ui/procedures/{FLOW}").text
    ex = some_execution(mem)
    ex_page = c.get(f"/ui/executions/{ex.id}").text
    assert "data-action" not in proc_page and "data-action" not in ex_page
    for path, body in [(f"/ui/api/procedures/{FLOW}/pin", {"pinned": True}),
                       (f"/ui/api/procedures/{FLOW}/rollback", {"version": 1}),
                       (f"/ui/api/procedures/{FLOW}/promote", {"version": 2}),
                       (f"/ui/api/procedures/{FLOW}/reject", {"version": 2}),
                       (f"/ui/api/procedures/{FLOW}/delete", {"confirm": FLOW}),
                       (f"/ui/api/executions/{ex.id}/evidence", {"reward": 1})]:
        r = post(c, path, body)
        assert r.status_code == 403, path
        assert r.json()["error"]["code"] == "forbidden"
    assert [h["status"] for h in mem.history(FLOW)] == ["active", "candidate"]
    assert not mem.store.list_evidence(procedure=ex.procedure) or all(
        e.execution_id != ex.id for e in mem.store.list_evidence(procedure=ex.procedure))


def test_writes_without_the_csrf_token_are_refused(mem: Memory) -> None:
    c = client(mem)
    url = f"/ui/api/procedures/{FLOW}/pin"
    assert post(c, url, {"pinned": True}, csrf=False).status_code == 403
    wrong = c.post(url, json={"pinned": True}, headers={**JSON, "X-CSRF-Token": "forged"})
    assert wrong.status_code == 403 and "CSRF" in wrong.json()["error"]["message"]
    cross = c.post(url, json={"pinned": True}, headers={
        **JSON, "X-CSRF-Token": c.cookies.get("procmem_csrf", path="/ui") or "",
        "Origin": "http://evil.example"})
    assert cross.status_code == 403
    form = c.post(url, content="pinned=true", headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-CSRF-Token": c.cookies.get("procmem_csrf", path="/ui") or ""})
    assert form.status_code == 415
    assert not mem.store.is_pinned(FLOW)
    # the cookie never authenticates the REST API
    rest = TestClient(c.app, base_url=BASE, cookies={"procmem_key": c.key})  # type: ignore[attr-defined]
    assert rest.get("/procedures").status_code == 401


# ------------------------------------------------------------------ actions


def test_pin_and_unpin(mem: Memory) -> None:
    c = client(mem)
    assert post(c, f"/ui/api/procedures/{FLOW}/pin", {"pinned": True}).json()["ok"]
    assert mem.store.is_pinned(FLOW)
    assert "Unpin" in c.get(f"/ui/procedures/{FLOW}").text
    post(c, f"/ui/api/procedures/{FLOW}/pin", {"pinned": False})
    assert not mem.store.is_pinned(FLOW)


def test_promote_a_candidate(mem: Memory) -> None:
    c = client(mem)
    assert 'data-body=\'{"version": 2}\'' in c.get(f"/ui/procedures/{FLOW}").text
    r = post(c, f"/ui/api/procedures/{FLOW}/promote", {"version": 2})
    assert r.status_code == 200, r.text
    assert [h["status"] for h in mem.history(FLOW)] == ["deprecated", "active"]
    again = post(c, f"/ui/api/procedures/{FLOW}/promote", {"version": 2})
    assert again.status_code == 409  # no longer a candidate


def test_reject_a_candidate(mem: Memory) -> None:
    c = client(mem)
    assert post(c, f"/ui/api/procedures/{FLOW}/reject", {"version": 2}).status_code == 200
    assert [h["status"] for h in mem.history(FLOW)] == ["active", "deprecated"]
    assert post(c, f"/ui/api/procedures/{FLOW}/reject", {"version": 1}).status_code == 409


def test_rollback(mem: Memory) -> None:
    c = client(mem)
    post(c, f"/ui/api/procedures/{FLOW}/promote", {"version": 2})
    r = post(c, f"/ui/api/procedures/{FLOW}/rollback", {"version": 1})
    assert r.json()["version"] == 3
    current = mem.get_procedure(FLOW)
    assert current.version == 3 and current.lineage.reason == "rollback to version 1"
    assert current.description == mem.get_procedure(FLOW, 1).description
    assert post(c, f"/ui/api/procedures/{FLOW}/rollback", {"version": 9}).status_code == 404


def test_delete_needs_the_name_typed(mem: Memory) -> None:
    c = client(mem)
    r = post(c, f"/ui/api/procedures/{FLOW}/delete", {"confirm": "yes"})
    assert r.status_code == 400 and mem.find_procedure(FLOW) is not None
    assert post(c, f"/ui/api/procedures/{FLOW}/delete", {"confirm": FLOW}).status_code == 200
    assert mem.find_procedure(FLOW) is None


def test_report_evidence(mem: Memory) -> None:
    c = client(mem, scopes=("read", "run"))
    ex = some_execution(mem)
    page = c.get(f"/ui/executions/{ex.id}").text
    assert 'id="evidence"' in page
    assert "data-action" not in page.replace('id="evidence" class="row" data-action', "")
    r = post(c, f"/ui/api/executions/{ex.id}/evidence",
             {"reward": 0.0, "source": "user", "note": "wrong order"})
    assert r.status_code == 200, r.text
    stored = [e for e in mem.store.list_evidence(procedure=ex.procedure)
              if e.execution_id == ex.id]
    assert [(e.reward, e.note) for e in stored] == [(0.0, "wrong order")]
    assert "wrong order" in c.get(f"/ui/executions/{ex.id}").text
    bad = post(c, f"/ui/api/executions/{ex.id}/evidence", {"reward": 2})
    assert bad.status_code == 422


def test_rename_asks_for_the_new_name_and_keeps_the_old_one_as_alias(mem: Memory) -> None:
    c = client(mem)
    html = c.get(f"/ui/procedures/{FLOW}").text
    assert re.search(r'<button[^>]*data-action="[^"]*/rename"[^>]*data-prompt="new_name"'
                     r'[^>]*data-confirm="Rename', html)
    versions = [p.version for p in mem.list_versions(FLOW)]
    r = post(c, f"/ui/api/procedures/{FLOW}/rename", {"new_name": "renamed_flow"})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "renamed_flow"
    assert [p.version for p in mem.list_versions("renamed_flow")] == versions
    assert mem.get_procedure(FLOW).name == "renamed_flow"
    assert post(c, "/ui/api/procedures/renamed_flow/rename",
                {"new_name": "bad name"}).status_code == 400
    read_only = client(mem, scopes=("read",))
    assert "/rename\"" not in read_only.get("/ui/procedures/renamed_flow").text
    assert post(read_only, "/ui/api/procedures/renamed_flow/rename",
                {"new_name": "x"}).status_code == 403


def test_no_auth_server_needs_no_sign_in(mem: Memory) -> None:
    c = TestClient(create_app(mem, auth=False), base_url=BASE)
    page = c.get("/ui/")
    assert page.status_code == 200 and FLOW in page.text
    assert "data-action" in c.get(f"/ui/procedures/{FLOW}").text
    assert post(c, f"/ui/api/procedures/{FLOW}/pin", {"pinned": True}).status_code == 200
    assert post(c, f"/ui/api/procedures/{FLOW}/pin", {"pinned": False},
                csrf=False).status_code == 403


def test_templates_and_static_files_are_package_data() -> None:
    from importlib.resources import files

    from procmem.web.paths import STATIC_FILES

    web = files("procmem.web")
    for name in STATIC_FILES:
        assert web.joinpath("static", name).is_file()
    for name in ("base.html", "login.html", "procedures.html", "procedure.html",
                 "execution.html", "executions.html", "trace.html", "error.html"):
        assert web.joinpath("templates", name).is_file()


def test_versions_show_their_verification_record(mem: Memory) -> None:
    mem.store.put_verification(FLOW, 2, {"name": FLOW, "version": 2, "ok": True,
                                         "reproduced": ["tr_a", "tr_b"], "failed": {}})
    page = text(client(mem).get(f"/ui/procedures/{FLOW}").text)
    assert "verified: 2 of 2 recorded runs reproduced" in page


def test_stored_text_is_escaped_in_pages_and_diagrams(mem: Memory) -> None:
    evil = "<script>alert(1)</script>"
    proc = mem.get_procedure(FLOW)
    steps = [s.model_copy(update={"action": evil}) if s.id == "s2" else s for s in proc.steps]
    mem.put_procedure(proc.model_copy(update={"description": evil, "steps": steps,
                                              "status": "active"}))
    c = client(mem)
    for path in ("/ui/", f"/ui/procedures/{FLOW}", "/ui/?text=script"):
        html = c.get(path).text
        assert "<script>alert" not in html, path
        assert "&lt;script&gt;alert(1)" in html, path
