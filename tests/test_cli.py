"""Tests for the ``procmem`` command line, through its real entry point (procmem.cli.main).

Real τ-retail lines come from the sample bundled in the package
(``procmem/data/tau_retail/sample.jsonl``, MIT, see its LICENSE). Every test
runs against a store under ``tmp_path`` (``PROCMEM_DB``) in a temporary
working directory.
"""

from __future__ import annotations

import json
import shlex
import textwrap
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import storebackend
from procmem.cli import main
from procmem.memory import Memory

EVAL_KEYS = {"train_traces", "procedures", "test_traces", "hit_at_1", "hit_at_5", "mrr",
             "replay_exact", "automation", "seconds"}
RETURN_TASK = "Return #W1234567 via paypal_7654321: Electric Kettle; "


def sample_lines() -> list[str]:
    ref = resources.files("procmem").joinpath("data", "tau_retail", "sample.jsonl")
    return ref.read_text(encoding="utf-8").splitlines()


@pytest.fixture(autouse=True)
def hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point the memory at tmp_path and run from there (nothing lands in the repo)."""
    db = tmp_path / "memory.db"
    monkeypatch.setenv("PROCMEM_DB", str(db))
    monkeypatch.setenv("COLUMNS", "200")  # rich output wide enough not to fold names
    monkeypatch.chdir(tmp_path)
    return db


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def run_json(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def traces_file(tmp_path: Path) -> Path:
    """The first 40 real traces: 7 returns, 8 exchanges, 7 cancels, ..."""
    path = tmp_path / "traces.jsonl"
    path.write_text("\n".join(sample_lines()[:40]) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def learned(traces_file: Path) -> Path:
    result = run("learn", str(traces_file))
    assert result.exit_code == 0, result.output
    return traces_file


@pytest.fixture
def tools_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                 request: pytest.FixtureRequest) -> str:
    """A tools module in tmp_path that logs every call to calls.jsonl; returns its name."""
    name = f"cli_tools_{request.node.name.replace('[', '_').replace(']', '_')}"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent('''
        import json
        import pathlib

        LOG = pathlib.Path(__file__).with_name("calls.jsonl")

        def _log(action, args):
            with LOG.open("a") as fh:
                fh.write(json.dumps({"action": action, "args": args}) + "\\n")

        def return_delivered_order_items(order_id, item_ids, payment_method_id):
            _log("return_delivered_order_items", {"order_id": order_id,
                 "item_ids": item_ids, "payment_method_id": payment_method_id})
            return json.dumps({"order_id": order_id, "status": "return requested"})

        def cancel_pending_order(order_id, reason):
            _log("cancel_pending_order", {"order_id": order_id, "reason": reason})
            raise RuntimeError("order " + order_id + " is not pending")

        TOOLS = {"return_delivered_order_items": return_delivered_order_items,
                 "cancel_pending_order": cancel_pending_order}
    '''), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def calls(tmp_path: Path) -> list[dict[str, Any]]:
    log = tmp_path / "calls.jsonl"
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]


# ----------------------------------------------------------------------- learn


def test_learn_reports_created_then_unchanged(traces_file: Path) -> None:
    first = run_json("learn", str(traces_file))
    assert first["import"] == {"read": 40, "stored": 40, "errors": []}
    assert {"return_delivered_order_items", "cancel_pending_order",
            "exchange_delivered_order_items"} <= set(first["learn"]["created"])
    again = run_json("learn", str(traces_file))
    assert again["import"]["stored"] == 0
    assert again["learn"]["created"] == [] and again["learn"]["updated"] == []
    assert sorted(again["learn"]["unchanged"]) == sorted(first["learn"]["created"])


def test_learn_human_output_names_procedures(traces_file: Path) -> None:
    result = run("learn", str(traces_file))
    assert result.exit_code == 0
    assert "created" in result.stdout and "cancel_pending_order" in result.stdout


def test_malformed_file_names_file_line_field_and_stores_nothing(tmp_path: Path) -> None:
    bad = json.loads(sample_lines()[2])
    del bad["steps"][0]["action"]
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([*sample_lines()[:2], json.dumps(bad)]) + "\n")
    result = run("learn", str(path))
    assert result.exit_code == 2
    assert result.stderr.startswith("error[invalid_trace]: ")
    assert f"{path}:3" in result.stderr and "steps.0.action" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert run_json("list") == []
    with Memory(str(tmp_path / "memory.db")) as mem:
        assert mem.list_traces() == []


def test_skip_invalid_stores_valid_lines_and_lists_errors(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([sample_lines()[0], "{not json", sample_lines()[1]]) + "\n")
    out = run_json("learn", str(path), "--skip-invalid")
    assert out["import"]["read"] == 2 and out["import"]["stored"] == 2
    assert len(out["import"]["errors"]) == 1 and f"{path}:2" in out["import"]["errors"][0]
    assert [p["name"] for p in run_json("list")] == ["return_delivered_order_items"]
    human = run("learn", str(path), "--skip-invalid")
    assert human.exit_code == 0 and f"{path}:2" in human.stderr


def test_learn_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run("learn", str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 2
    assert result.stderr.startswith("error[usage]: cannot read trace file")


# ------------------------------------------------------------ list/show/search


def test_list_json_has_learned_procedures(learned: Path) -> None:
    procs = {p["name"]: p for p in run_json("list")}
    ret = procs["return_delivered_order_items"]
    assert ret["actions"] == ["return_delivered_order_items"]
    assert ret["params"] == ["order_id", "payment_method_id"]
    assert ret["demonstrations"] >= 3 and ret["status"] == "active"
    assert run_json("list", "--status", "deprecated") == []


def test_show_json_and_human(learned: Path) -> None:
    proc = run_json("show", "return_delivered_order_items")
    assert proc["version"] == 1
    order = next(p for p in proc["params"] if p["name"] == "order_id")
    assert order["schema"] == {"type": "string"}
    assert order["examples"] and all(e.startswith("#W") for e in order["examples"])
    assert order["extractor"]["pattern"]
    args = proc["steps"][0]["args"]
    assert args["order_id"] == {"$param": "order_id"}
    assert "$ask" in args["item_ids"]
    assert "tau-retail-train-0" in proc["lineage"]["traces"]
    human = run("show", "return_delivered_order_items", "--version", "1")
    assert human.exit_code == 0
    assert "⟨param order_id⟩" in human.stdout and "⟨ask:" in human.stdout


def test_search_json_ranks_and_binds(learned: Path) -> None:
    hits = run_json("search", RETURN_TASK, "--limit", "3")
    assert 1 <= len(hits) <= 3
    top = hits[0]
    assert top["rank"] == 1 and top["name"] == "return_delivered_order_items"
    assert top["bound"] == {"order_id": "#W1234567", "payment_method_id": "paypal_7654321"}
    assert set(top["ranks"]) >= {"bm25", "vector", "relevance", "structure"}
    assert top["score"] >= hits[-1]["score"]
    human = run("search", RETURN_TASK)
    assert human.exit_code == 0 and "return_delivered_order_items" in human.stdout


def test_search_embeds_what_was_learned_without_a_model_first(
        traces_file: Path, tmp_path: Path, store_factory: storebackend.Factory) -> None:
    db = str(tmp_path / "plain.db")
    assert run("--db", db, "--embedder", "none", "learn", str(traces_file)).exit_code == 0
    store = store_factory(db)  # the backend under test, as the CLI opened it
    assert store.count_embeddings() == {}
    store.close()
    human = run("--db", db, "search", RETURN_TASK)  # default embedder: embeds, then searches
    assert human.exit_code == 0 and "return_delivered_order_items" in human.stdout
    store = store_factory(db)
    assert sum(store.count_embeddings().values()) > 0
    store.close()
    again = run("--db", db, "search", RETURN_TASK)  # nothing left to embed: no bar at all
    assert again.exit_code == 0 and again.stderr == ""
    keyword = run("--db", db, "--embedder", "none", "search", RETURN_TASK, "--json")
    assert keyword.exit_code == 0 and json.loads(keyword.stdout)[0]["rank"] == 1


def test_search_bad_limit_is_usage_error(learned: Path) -> None:
    result = run("search", "anything", "--limit", "0")
    assert result.exit_code == 2 and result.stderr.startswith("error[usage]: limit")


def test_unknown_procedure_exits_3(learned: Path, tools_module: str) -> None:
    for args in (["show", "no_such_thing"], ["stats", "no_such_thing"],
                 ["replay", "no_such_thing", "--tools", f"{tools_module}:TOOLS"]):
        result = run(*args)
        assert result.exit_code == 3, args
        assert result.stderr == "error[not_found]: procedure 'no_such_thing' not found\n"


def test_db_option_wins_over_environment(traces_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.db"
    assert run("--db", str(other), "learn", str(traces_file)).exit_code == 0
    assert other.exists() and not (tmp_path / "memory.db").exists()
    assert run_json("--db", str(other), "list")
    assert run("list").exit_code == 3  # read commands never create a store
    assert not (tmp_path / "memory.db").exists()


# ---------------------------------------------------------------- replay/resume


def test_replay_pauses_then_resume_command_finishes(learned: Path, tools_module: str,
                                                    tmp_path: Path) -> None:
    spec = f"{tools_module}:TOOLS"
    result = run("replay", "return_delivered_order_items", "--tools", spec, "--task", RETURN_TASK,
                 "--json")
    assert result.exit_code == 10, result.output  # paused: PAUSED_EXIT
    paused = json.loads(result.stdout)
    assert paused["status"] == "paused"
    assert [n["key"] for n in paused["needs"]] == ["ask:s1:/item_ids"]
    assert paused["params"] == {"order_id": "#W1234567", "payment_method_id": "paypal_7654321"}
    assert calls(tmp_path) == []
    command = shlex.split(paused["resume_command"])
    assert command[:3] == ["procmem", "resume", paused["id"]]
    assert command[command.index("--tools") + 1] == spec
    answers = json.loads(command[command.index("--answers") + 1])
    assert answers == {"ask:s1:/item_ids": "<VALUE>"}
    command[command.index("--answers") + 1] = json.dumps({"ask:s1:/item_ids": ["9624127908"]})
    done = run_json(*command[1:])
    assert done["status"] == "succeeded" and done["id"] == paused["id"]
    run_ = done["step_runs"][0]
    assert run_["sources"] == {"/order_id": "param:order_id", "/item_ids": "ask",
                               "/payment_method_id": "param:payment_method_id"}
    assert calls(tmp_path) == [{"action": "return_delivered_order_items", "args": {
        "order_id": "#W1234567", "item_ids": ["9624127908"],
        "payment_method_id": "paypal_7654321"}}]
    (stats,) = run_json("stats", "return_delivered_order_items")
    assert stats["runs"] == 1 and stats["steps"][0]["successes"] == 1
    assert stats["successes"] == 0  # steps succeeding without evidence is not task success
    assert stats["last_run_at"] is not None


def test_replay_human_output_shows_needs_and_resume_command(learned: Path,
                                                            tools_module: str) -> None:
    result = run("replay", "return_delivered_order_items", "--tools", f"{tools_module}:TOOLS",
                 "--params", '{"order_id": "#W7654321"}')
    assert result.exit_code == 10  # paused
    out = " ".join(result.stdout.split())
    assert "param:payment_method_id" in out  # params are needed before any step runs
    assert "e.g. credit_card_4190576" in out  # examples from the demonstrations
    assert "procmem resume ex_" in out
    assert """--answers '{"param:payment_method_id": "<VALUE>"}'""" in out


def test_tools_object_without_the_actions_is_unknown_tool(learned: Path,
                                                          tools_module: str) -> None:
    result = run("replay", "return_delivered_order_items", "--tools", f"{tools_module}:_log")
    assert result.exit_code == 2
    assert result.stderr.startswith(
        "error[unknown_tool]: no tool registered for action 'return_delivered_order_items'")


def test_replay_uses_answers_and_attribute_tools(learned: Path, tools_module: str,
                                                 tmp_path: Path) -> None:
    (tmp_path / "holder.py").write_text(textwrap.dedent(f"""
        import {tools_module} as _impl

        class _Tools:  # an object: its public methods are the tools
            def return_delivered_order_items(self, order_id, item_ids, payment_method_id):
                return _impl.return_delivered_order_items(order_id, item_ids, payment_method_id)

        tools = _Tools()
        """), encoding="utf-8")
    answers = json.dumps({"ask:s1:/item_ids": ["1", "2"]})
    done = run_json("replay", "return_delivered_order_items", "--tools", "holder:tools",
                    "--task", RETURN_TASK, "--answers", answers)
    assert done["status"] == "succeeded"
    assert calls(tmp_path)[0]["args"]["item_ids"] == ["1", "2"]


def test_failed_tool_is_data_and_exit_1(learned: Path, tools_module: str) -> None:
    result = run("replay", "cancel_pending_order", "--tools", f"{tools_module}:TOOLS", "--json",
                 "--task", "Cancel order #W1111111 because no longer needed. ")
    assert result.exit_code == 1
    ex = json.loads(result.stdout)
    assert ex["status"] == "failed"
    assert "is not pending" in ex["step_runs"][0]["error"]
    assert ex["step_runs"][0]["args"] == {"order_id": "#W1111111", "reason": "no longer needed"}


@pytest.mark.parametrize(("option", "value", "needle"), [
    ("--params", "{order_id: 1}", "'--params'"),
    ("--params", "[1, 2]", "must be a JSON object"),
    ("--answers", "nope", "'--answers'"),
])
def test_bad_json_option_is_usage_error(learned: Path, tools_module: str, option: str,
                                        value: str, needle: str) -> None:
    result = run("replay", "return_delivered_order_items", "--tools", f"{tools_module}:TOOLS",
                 option, value)
    assert result.exit_code == 2
    assert needle in result.stderr and "Traceback" not in result.output


@pytest.mark.parametrize(("spec", "needle"), [
    ("no_colon", "--tools must be MODULE:OBJECT"),
    ("surely_not_a_module_xyz:TOOLS", "cannot import module 'surely_not_a_module_xyz'"),
])
def test_bad_tools_spec_is_usage_error(learned: Path, spec: str, needle: str) -> None:
    result = run("replay", "return_delivered_order_items", "--tools", spec)
    assert result.exit_code == 2
    assert result.stderr.startswith("error[usage]: ") and needle in result.stderr


def test_tools_missing_attribute_is_named(learned: Path, tools_module: str) -> None:
    result = run("replay", "return_delivered_order_items", "--tools", f"{tools_module}:NOPE")
    assert result.exit_code == 2
    assert f"module '{tools_module}' has no attribute 'NOPE'" in result.stderr


def test_unknown_tool_and_bad_param_type_exit_2(learned: Path, tools_module: str) -> None:
    result = run("replay", "exchange_delivered_order_items", "--tools", f"{tools_module}:TOOLS")
    assert result.exit_code == 2 and result.stderr.startswith("error[unknown_tool]: ")
    result = run("replay", "return_delivered_order_items", "--tools", f"{tools_module}:TOOLS",
                 "--params", '{"order_id": 5}')
    assert result.exit_code == 2 and result.stderr.startswith("error[param_error]: ")


def test_resume_unknown_execution_exits_3(learned: Path, tools_module: str) -> None:
    result = run("resume", "ex_nope", "--tools", f"{tools_module}:TOOLS", "--answers", "{}")
    assert result.exit_code == 3 and result.stderr.startswith("error[not_found]: ")


def test_stats_all_json(learned: Path) -> None:
    rows = run_json("stats")
    assert {r["name"] for r in rows} == {p["name"] for p in run_json("list")}
    assert all(r["runs"] == 0 and r["reliability"] == 0.5 for r in rows)


# ------------------------------------------------------------------ eval/demo


def test_eval_holdout_json_keys_and_figures(tmp_path: Path) -> None:
    path = tmp_path / "sample.jsonl"
    path.write_text("\n".join(sample_lines()) + "\n")
    figures = run_json("eval", "--train", str(path), "--holdout", "30")
    abstention = {"abstain_unfindable", "confident_findable", "confident_correct"}
    safety = {"first_stage_hit_at_1", "overlap_hit_at_1", "silent_errors", "silent_error_cases",
              "paused_at_selection", "confident_precision", "confident_coverage", "reliability",
              "supplied_precision", "folds"}
    assert EVAL_KEYS <= set(figures) <= (EVAL_KEYS | {"findable", "retriever", "reranker"}
                                         | abstention | safety)
    assert figures["reranker"] is None
    assert figures["retriever"] == "hybrid"
    for key in abstention - {"abstain_unfindable"}:
        assert 0 <= figures[key] <= 1
    assert figures["train_traces"] == 130 and figures["test_traces"] == 30
    assert figures["hit_at_1"] >= 0.7 and figures["replay_exact"] >= 0.7
    assert 0 < figures["automation"] <= 1
    assert not (tmp_path / "memory.db").exists()  # eval never touches --db


def test_eval_test_file_and_option_errors(tmp_path: Path) -> None:
    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train.write_text("\n".join(sample_lines()[:60]) + "\n")
    test.write_text("\n".join(sample_lines()[60:70]) + "\n")
    figures = run_json("eval", "--train", str(train), "--test", str(test))
    assert figures["train_traces"] == 60 and figures["test_traces"] == 10
    both = run("eval", "--train", str(train), "--test", str(test), "--holdout", "3")
    assert both.exit_code == 2 and "exactly one of --test FILE, --holdout N or --loo" in both.output
    assert run("eval", "--train", str(train)).exit_code == 2
    too_many = run("eval", "--train", str(train), "--holdout", "60")
    assert too_many.exit_code == 2 and "--holdout must be between 1 and 59" in too_many.stderr


def test_eval_cases_show_every_test_trace(tmp_path: Path) -> None:
    train, test = tmp_path / "train.jsonl", tmp_path / "test.jsonl"
    train.write_text("\n".join(sample_lines()[:60]) + "\n")
    test.write_text("\n".join(sample_lines()[60:70]) + "\n")
    plain = run_json("eval", "--train", str(train), "--test", str(test), "--retriever", "bm25")
    assert "cases" not in plain  # the default JSON stays the figures
    out = run_json("eval", "--train", str(train), "--test", str(test), "--retriever", "bm25",
                   "--cases")
    ids = [json.loads(line)["id"] for line in sample_lines()[60:70]]
    assert [c["trace"] for c in out["cases"]] == ids
    first = json.loads(sample_lines()[60])
    assert out["cases"][0]["actions"] == [s["action"] for s in first["steps"] if not s["error"]]
    hits = [c["rank"] == 1 for c in out["cases"]]
    assert sum(hits) / len(hits) == pytest.approx(out["hit_at_1"])
    assert sum(c["exact"] for c in out["cases"]) / 10 == pytest.approx(out["replay_exact"])
    text = run("eval", "--train", str(train), "--test", str(test), "--retriever", "bm25",
               "--cases")
    assert text.exit_code == 0 and "per test trace" in text.stdout and ids[0] in text.stdout


def test_demo_runs_and_writes_nothing(tmp_path: Path) -> None:
    result = run("demo")
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "a task it has never seen" in out
    assert "bound from the task text" in out and "answered by the oracle" in out
    assert "Issued exactly the recorded calls: yes" in out
    assert not (tmp_path / "memory.db").exists()


def test_demo_json(tmp_path: Path) -> None:
    data = run_json("demo")
    assert data["sample"] == {"traces": 160, "train": 130, "test": 30}
    train_ids = {json.loads(line)["id"] for line in sample_lines()[:130]}
    assert data["task"]["trace"] not in train_ids
    assert data["hits"] and data["execution"]["status"] == "succeeded" and data["exact"] is True
    assert EVAL_KEYS <= set(data["figures"])
    assert data["figures"]["test_traces"] == 30
    assert not (tmp_path / "memory.db").exists()


def test_demo_unknown_trace_exits_3() -> None:
    result = run("demo", "--trace", "tau-retail-train-0")  # a training trace, not held out
    assert result.exit_code == 3
    assert result.stderr == "error[not_found]: held-out trace 'tau-retail-train-0' not found\n"


def test_min_constant_option_lets_few_agreeing_demonstrations_make_a_literal(
        tmp_path: Path) -> None:
    lines = [json.dumps({"task": f"Ping host h{i}.", "outcome": "success", "steps": [
        {"action": "ping", "args": {"host": f"h{i}", "count": 3}, "output": "ok"}]})
        for i in range(1, 4)]
    path = tmp_path / "pings.jsonl"
    path.write_text("\n".join(lines) + "\n")
    assert run("--db", str(tmp_path / "a.db"), "learn", str(path)).exit_code == 0
    asked = run_json("--db", str(tmp_path / "a.db"), "show", "ping")
    assert "$ask" in asked["steps"][0]["args"]["count"]  # 3 agreeing: below the default 48
    assert run("--db", str(tmp_path / "b.db"), "--min-constant", "3", "learn",
               str(path)).exit_code == 0
    assert run_json("--db", str(tmp_path / "b.db"), "show", "ping")["steps"][0]["args"][
        "count"] == 3
