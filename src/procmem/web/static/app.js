// procmem web UI: sign-in, filter-as-you-type, confirm dialogs and JSON POSTs.
// No framework, nothing loaded from elsewhere; every write sends JSON with the
// X-CSRF-Token header (double submit, see procmem/web/session.py).
"use strict";
(function () {
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  function flash(text, kind) {  // kind: "good", "bad" or "info"
    const box = document.getElementById("flash");
    if (!box) return;
    box.textContent = text;
    box.className = "flash " + kind;
    box.hidden = false;
  }

  async function post(url, body) {
    const res = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf()},
      body: JSON.stringify(body || {}),
    });
    let data = {};
    try { data = await res.json(); } catch (e) { data = {}; }
    if (!res.ok) throw new Error((data.error && data.error.message) || ("HTTP " + res.status));
    return data;
  }

  // A confirm dialog; resolves true when confirmed (and, with expect, the text typed;
  // with prompt, the value typed in the prompt field, which must not be empty).
  function confirmDialog(text, expect, prompt) {
    const dlg = document.getElementById("confirm");
    document.getElementById("confirm-text").textContent = text;
    const field = document.getElementById("confirm-field");
    const input = document.getElementById("confirm-input");
    const askField = document.getElementById("prompt-field");
    const ask = document.getElementById("prompt-input");
    field.hidden = !expect;
    askField.hidden = !prompt;
    input.value = "";
    ask.value = "";
    document.getElementById("confirm-expect").textContent = expect || "";
    return new Promise((resolve) => {
      dlg.addEventListener("close", () => {
        const ok = dlg.returnValue === "ok" && (!expect || input.value === expect);
        if (!ok) { resolve(false); return; }
        if (prompt) { resolve(ask.value.trim() || false); return; }
        resolve(expect ? input.value : true);
      }, {once: true});
      dlg.showModal();
    });
  }

  async function act(url, body, text, expect, prompt) {
    const ok = await confirmDialog(text, expect, prompt);
    if (!ok) { flash("Cancelled: nothing changed.", "info"); return; }
    if (expect) body = Object.assign({}, body, {confirm: ok});
    if (prompt) body = Object.assign({}, body, {[prompt]: ok});
    try {
      const data = await post(url, body);
      flash(data.message || "Done.", "good");
      if (expect) { window.location.href = "/ui/"; return; }
      if (prompt && data.name) {
        window.location.href = "/ui/procedures/" + encodeURIComponent(data.name); return;
      }
      setTimeout(() => window.location.reload(), 700);
    } catch (err) {
      flash("Refused: " + err.message, "bad");
    }
  }

  document.addEventListener("click", (ev) => {
    const btn = ev.target.closest("button[data-action]");
    if (!btn) return;
    ev.preventDefault();
    act(btn.dataset.action, JSON.parse(btn.dataset.body || "{}"), btn.dataset.confirm,
        btn.dataset.expect, btn.dataset.prompt);
  });

  const evidence = document.getElementById("evidence");
  if (evidence) {
    evidence.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const f = new FormData(evidence);
      const body = {reward: Number(f.get("reward")), source: f.get("source"),
                    note: f.get("note") || ""};
      act(evidence.dataset.action, body,
          `Report reward ${body.reward} (${body.source}) on this execution? ` +
          "Reliability may change and a candidate may be promoted or demoted.");
    });
  }

  const login = document.getElementById("login");
  if (login) {
    login.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const key = document.getElementById("key").value.trim();
      const err = document.getElementById("login-error");
      const res = await fetch("/ui/session", {
        method: "POST", credentials: "same-origin",
        headers: {"Authorization": "Bearer " + key, "Content-Type": "application/json"},
        body: "{}",
      });
      if (res.ok) { window.location.href = login.dataset.next || "/ui/"; return; }
      let data = {};
      try { data = await res.json(); } catch (e) { data = {}; }
      err.textContent = (data.error && data.error.message) || ("HTTP " + res.status);
      err.hidden = false;
    });
  }

  const logout = document.getElementById("logout");
  if (logout) {
    logout.addEventListener("click", async () => {
      try { await post("/ui/logout", {}); } catch (e) { /* signed out anyway */ }
      window.location.href = "/ui/login";
    });
  }

  const filter = document.getElementById("filter-text");
  const table = document.getElementById("procedures");
  if (filter && table) {
    filter.addEventListener("input", () => {
      const needle = filter.value.trim().toLowerCase();
      for (const row of table.querySelectorAll("tbody tr[data-filter]")) {
        row.hidden = needle !== "" && !row.dataset.filter.includes(needle);
      }
    });
  }
})();
