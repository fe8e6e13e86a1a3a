"""Tests for procmem.export (Markdown how-to, JSON, SKILL.md text) and the
``export`` / ``import-skill`` commands of procmem.cli.export, through the real
CLI entry point with ``--db`` under ``tmp_path``.

Procedures come from the real τ-retail sample (tests/data/tau_retail_sample.jsonl)
learned with ``Memory(...).learn``, plus one hand-written procedure that uses
every kind of reference (the sample's procedures only use ``$param`` and ``$ask``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from procmem.cli import main
from procmem.core.model import Check, Lineage, OnError, Param, Procedure, Step
from procmem.core.template import references
from procmem.formats.export import (
    MAX_DESCRIPTION,
    MAX_NAME,
    SKILL_NAME,
    check_words,
    on_error_words,
    skill_description,
    skill_name,
    to_json,
    to_markdown,
)
from procmem.formats.skills import import_skill
from procmem.memory import Memory

RETURN = Procedure(
    name="return_items", description="Return items of a delivered order.",
    params=[Param(name="user_id", schema={"type": "string"}, description="the customer",
                  examples=["mia_1", "noah_2"]),
            Param(name="reason", schema={"type": ["string", "null"]}, required=False)],
    steps=[
        Step(id="s1", action="get_user_details", args={"user_id": {"$param": "user_id"}},
             side_effect=False, expect=[Check(op="exists", path="/orders")]),
        Step(id="s2", action="get_order_details",
             args={"order_id": {"$step": "s1", "path": "/orders/0"}},
             on_error=OnError(policy="retry", retries=2, backoff_s=0.5)),
        Step(id="s3", action="return_delivered_order_items", side_effect=True,
             args={"order_id": {"$ask": "which order to return",
                                "from": {"$step": "s1", "path": "/orders"}},
                   "item_ids": [{"$step": "s2", "path": "/items/0/item_id"}, "1008"],
                   "note": {"$literal": {"$raw": 1}}, "whole": {"$step": "s2", "path": ""}},
             expect=[Check(op="equals", path="/status", value="return requested"),
                     Check(op="type", path="/items", value="array")]),
        Step(id="s4", action="procedure:notify_customer", on_error=OnError(policy="ask")),
        Step(id="s5", action="log", on_error=OnError(policy="skip")),
    ],
    lineage=Lineage(traces=["t1", "t2", "t3"], parent_version=1, reason="repaired"),
    version=2,
)


@pytest.fixture(scope="module")
def learned(tau_sample_path: Path) -> list[Procedure]:
    """Every procedure learned from the 120 real τ-retail traces."""
    mem = Memory(":memory:")
    mem.import_traces(tau_sample_path)
    mem.learn()
    procs = mem.list_procedures(limit=100)
    assert len(procs) > 20
    return procs


# ------------------------------------------------------------------ to_markdown


def test_markdown_of_learned_procedures_mentions_every_param_and_tool(
        learned: list[Procedure]) -> None:
    for proc in learned:
        text = to_markdown(proc)
        assert text.startswith(f"# {proc.name}\n")
        for param in proc.params:
            assert f"`{{{param.name}}}`" in text, (proc.name, param.name)
            assert json.dumps(param.examples[0]) in text
        for number, step in enumerate(proc.steps, 1):
            assert f"{number}. Call the tool `{step.action}` (step `{step.id}`)" in text
        assert not re.search(r'"\$(param|step|ask)"', text), proc.name
        asks = [node for s in proc.steps for _, node in references(s.args) if "$ask" in node]
        for node in asks:
            assert f"ASK: {node['$ask']}" in text
        n = len(proc.lineage.traces)
        assert f"Learned from {n} demonstration{'s' if n > 1 else ''}" in text


def test_markdown_renders_every_reference_kind_readably() -> None:
    text = to_markdown(RETURN)
    assert "- `user_id`: `{user_id}`" in text
    assert "- `order_id`: the value at `/orders/0` of step 1's output" in text
    assert "- `order_id`: ASK: which order to return (choose from step 1's `/orders`)" in text
    assert "- `item_ids`: a list of 2:" in text
    assert "- item 1: the value at `/items/0/item_id` of step 2's output" in text
    assert '- item 2: `"1008"`' in text
    assert '- `note`: `{"$raw": 1}`' in text  # an escaped literal shows its value
    assert "- `whole`: the whole of step 2's output" in text
    assert "4. Run the procedure `notify_customer` (step `s4`)." in text


def test_markdown_params_expectations_policies_and_lineage() -> None:
    text = to_markdown(RETURN)
    assert '- `{user_id}` (string): the customer. Example: `"mia_1"`.' in text
    assert "- `{reason}` (string or null, optional)." in text
    assert "Expect: the output has a value at `/orders`." in text
    assert ('Expect: `/status` equals `"return requested"`; `/items` is of type array.'
            in text)
    assert "This call only reads; it changes nothing." in text
    assert "This call changes things (side effect): check every value first." in text
    assert ("If it fails: call it again up to 2 times, waiting 0.5 s before the first retry "
            "and doubling the wait each time; if it still fails, stop and report the error."
            in text)
    assert "If it fails: ask the user how to go on" in text
    assert "If it fails: note the failure and go on with the next step." in text
    assert "If it fails: stop here and report the error" in text
    assert ("Learned from 3 demonstrations (recorded traces); derived from version 1; "
            "reason: repaired. This is version 2, status active.") in text
    assert to_markdown(RETURN) == text  # deterministic


@pytest.mark.parametrize(("check", "words"), [
    (Check(op="exists"), "there is an output"),
    (Check(op="equals", value=3), "the output equals `3`"),
    (Check(op="contains", path="/tags", value="x"), '`/tags` contains `"x"`'),
    (Check(op="not_contains", path="/e", value="err"), '`/e` does not contain `"err"`'),
    (Check(op="type", path="/n", value=["integer", "null"]), "`/n` is of type integer or null"),
])
def test_check_words(check: Check, words: str) -> None:
    assert check_words(check) == words


def test_on_error_words_single_retry_without_backoff() -> None:
    assert on_error_words(OnError(policy="retry", retries=1)) == (
        "call it again once; if it still fails, stop and report the error.")


def test_markdown_of_a_text_only_procedure_has_instructions_and_no_steps() -> None:
    proc = Procedure(name="greet", description="Greet people.\n\n# How\n\nSay hello.",
                     tags=["text-only"])
    text = to_markdown(proc)
    assert "Greet people.\n\nTags: text-only.\n\n## Instructions\n\n# How\n\nSay hello." in text
    assert "no replayable steps: follow the instructions above" in text
    assert "Written or imported, not learned from demonstrations" in text


def test_to_json_is_the_full_procedure_by_alias() -> None:
    data = to_json(RETURN)
    assert data["params"][0]["schema"] == {"type": "string"}
    assert "schema_" not in data["params"][0]
    assert Procedure.model_validate(data) == RETURN
    assert json.loads(json.dumps(data)) == data


# ------------------------------------------------------------- skill naming


def test_skill_names_of_learned_procedures_are_valid_and_distinct(
        learned: list[Procedure]) -> None:
    names = [skill_name(p.name) for p in learned]
    for name in names:
        assert len(name) <= MAX_NAME and SKILL_NAME.match(name), name
    assert len(set(names)) == len(names)
    assert skill_name("cancel_pending_order") == "cancel-pending-order"


@pytest.mark.parametrize(("name", "expected"), [
    ("Cancel_Order", "cancel-order"), ("__a..b--c__", "a-b-c"), ("___", "procedure"),
    ("v1.2", "v1-2"),
])
def test_skill_name_examples(name: str, expected: str) -> None:
    assert skill_name(name) == expected


def test_long_skill_names_are_cut_and_keep_a_distinguishing_hash() -> None:
    a, b = skill_name("x" * 70 + "_a"), skill_name("x" * 70 + "_b")
    assert a != b and len(a) <= MAX_NAME and len(b) <= MAX_NAME
    assert SKILL_NAME.match(a) and SKILL_NAME.match(b)


def test_skill_description_is_bounded_and_says_when_to_use(learned: list[Procedure]) -> None:
    proc = next(p for p in learned if p.name == "cancel_pending_order")
    text = skill_description(proc)
    assert text.startswith("Cancel pending order.")
    assert "Use it for tasks done by calling cancel_pending_order, given order_id" in text
    huge = proc.model_copy(update={"description": "word " * 2000})
    clipped = skill_description(huge)
    assert 0 < len(clipped) <= MAX_DESCRIPTION and clipped.endswith("…")
    assert skill_description(proc.model_copy(update={"description": ""})).startswith(
        "The cancel_pending_order procedure.")


# ---------------------------------------------------------------------- CLI


@pytest.fixture
def db(tmp_path: Path, tau_sample_path: Path) -> str:
    """A memory file holding the procedures learned from the τ-retail sample."""
    path = tmp_path / "learned.db"
    with Memory(path) as mem:
        mem.import_traces(tau_sample_path)
        mem.learn()
    return str(path)


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_cli_export_markdown_and_json_to_stdout_and_file(db: str, tmp_path: Path) -> None:
    code, out, _ = run("--db", db, "export", "cancel_pending_order", "--format", "markdown")
    assert code == 0
    assert "`{order_id}`" in out and "Call the tool `cancel_pending_order`" in out
    code, out, _ = run("--db", db, "export", "cancel_pending_order", "--format", "json")
    assert code == 0
    with Memory(db) as mem:
        assert json.loads(out) == to_json(mem.get_procedure("cancel_pending_order"))
    target = tmp_path / "how.md"
    code, out, err = run("--db", db, "export", "cancel_pending_order", "--version", "1",
                         "--format", "markdown", "--out", str(target))
    assert code == 0 and out == "" and f"wrote {target}" in err
    assert target.read_text(encoding="utf-8").startswith("# cancel_pending_order\n")


def test_cli_export_all_as_skills_then_import_into_another_memory(db: str,
                                                                 tmp_path: Path) -> None:
    code, out, _ = run("--db", db, "export", "--all", "--format", "skill",
                       "--out", str(tmp_path / "skills"))
    assert code == 0
    with Memory(db) as mem:
        procs = {p.name: p for p in mem.list_procedures(limit=100)}
    folders = sorted((tmp_path / "skills").iterdir())
    assert len(folders) == len(procs) == len(out.splitlines())
    other = str(tmp_path / "other.db")
    code, out, _ = run("--db", other, "import-skill", str(tmp_path / "skills"), "--json")
    assert code == 0
    rows = json.loads(out)
    assert {r["name"] for r in rows} == set(procs)
    assert all(r["kind"] == "replayable" and r["stored"] and r["version"] == 1 for r in rows)
    with Memory(other) as mem:
        for name, proc in procs.items():
            assert mem.get_procedure(name).content() == proc.content()
    code, out, _ = run("--db", other, "import-skill", str(folders[0]))  # same content again
    assert code == 0 and out.startswith("unchanged ")


def test_cli_export_all_as_json_is_an_array(db: str) -> None:
    code, out, _ = run("--db", db, "export", "--all", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert isinstance(data, list) and len(data) > 20
    assert all(Procedure.model_validate(d).status == "active" for d in data)


def test_cli_import_text_only_skill_is_searchable(tmp_path: Path) -> None:
    folder = tmp_path / "kettle-refunds"
    folder.mkdir()
    (folder / "SKILL.md").write_text(
        "---\nname: kettle-refunds\ndescription: Refund a damaged kettle. Use when a customer "
        "reports a broken kettle.\n---\n\nCheck the order, then refund within 30 days.\n",
        encoding="utf-8")
    code, out, _ = run("import-skill", str(folder))
    assert code == 0
    assert out.startswith("imported kettle-refunds v1 (text-only, no steps) from ")
    code, out, _ = run("search", "my kettle arrived broken", "--json")
    assert code == 0 and json.loads(out)[0]["name"] == "kettle-refunds"
    assert import_skill(folder).steps == []


def test_cli_import_stops_on_an_invalid_skill_and_stores_nothing(tmp_path: Path) -> None:
    good, bad = tmp_path / "good-one", tmp_path / "bad-one"
    for folder in (good, bad):
        folder.mkdir()
    (good / "SKILL.md").write_text("---\nname: good-one\ndescription: Fine.\n---\nDo it.\n")
    (bad / "SKILL.md").write_text("---\nname: Bad-One\ndescription: Not fine.\n---\n")
    code, out, err = run("import-skill", str(good), str(bad))
    assert code == 2 and out == ""
    assert err.startswith("error[usage]: ") and "SKILL.md" in err and "'name'" in err
    code, out, err = run("list", "--json")
    # nothing stored: an empty store, or none at all (read commands never create one)
    assert (code, json.loads(out) if code == 0 else err.startswith("error[not_found]: no store")
            ) in ((0, []), (3, True))


@pytest.mark.parametrize(("args", "message"), [
    (["export", "--format", "json"], "exactly one of NAME or --all"),
    (["export", "x", "--all", "--format", "json"], "exactly one of NAME or --all"),
    (["export", "--all", "--version", "2", "--format", "json"], "--version applies to one"),
    (["export", "x", "--format", "skill"], "--format skill needs --out DIR"),
    (["import-skill", "missing-folder"], "not a folder"),
])
def test_cli_usage_errors(args: list[str], message: str) -> None:
    code, _, err = run(*args)
    assert code == 2 and message in err


def test_cli_export_unknown_procedure_exits_3(db: str) -> None:
    code, _, err = run("--db", db, "export", "nope", "--format", "markdown")
    assert code == 3 and "error[not_found]: procedure 'nope' not found" in err
