"""Tests for procmem.formats.skills: Agent Skills folders (https://agentskills.io/specification).

Round trips on procedures learned from the real τ-retail sample; text-only
skills written by hand; the front-matter validator and YAML-subset parser on
valid and invalid input (checked against PyYAML where it is installed).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from procmem.core.errors import Conflict, InvalidProcedure, UsageError
from procmem.core.model import Procedure, Step
from procmem.core.procstats import ProcedureStats
from procmem.formats.export import to_markdown
from procmem.formats.skills import (
    TEXT_ONLY_TAG,
    export_skill,
    export_skills,
    find_skill_folders,
    import_skill,
    is_text_only,
    parse_front_matter,
    read_skill,
    validate_front_matter,
)
from procmem.memory import Memory


@pytest.fixture(scope="module")
def learned(tau_sample_path: Path) -> list[Procedure]:
    """Every procedure learned from the 120 real τ-retail traces."""
    mem = Memory(":memory:")
    mem.import_traces(tau_sample_path)
    mem.learn()
    return mem.list_procedures(limit=100)


def write_skill(root: Path, folder: str, text: str) -> Path:
    path = root / folder
    path.mkdir(parents=True, exist_ok=True)
    (path / "SKILL.md").write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------ round trip


def test_export_then_import_gives_the_same_procedure(learned: list[Procedure],
                                                     tmp_path: Path) -> None:
    folders = export_skills(learned, tmp_path)
    assert len({f.name for f in folders}) == len(learned)
    for proc, folder in zip(learned, folders, strict=True):
        assert sorted(p.name for p in folder.iterdir()) == ["SKILL.md", "procedure.json"]
        assert import_skill(folder).content() == proc.content()


def test_written_front_matter_is_valid_and_matches_the_folder(learned: list[Procedure],
                                                              tmp_path: Path) -> None:
    for proc in learned:
        folder = export_skill(proc, tmp_path)
        text = (folder / "SKILL.md").read_text(encoding="utf-8")
        fields, body = parse_front_matter(text)
        validate_front_matter(fields, folder_name=folder.name)
        assert fields["name"] == folder.name
        assert fields["metadata"] == {"procmem-procedure": proc.name,
                                      "procmem-version": str(proc.version),
                                      "procmem-kind": "replayable"}
        assert body.strip().startswith(to_markdown(proc).strip())
        skill = read_skill(folder)
        assert skill.name == folder.name and skill.description == fields["description"]


def test_written_front_matter_reads_the_same_with_pyyaml(learned: list[Procedure],
                                                         tmp_path: Path) -> None:
    yaml = pytest.importorskip("yaml")
    odd = learned[0].model_copy(update={
        "description": 'Quotes " and \\ and: colons, #hash, tab\tand ünïcode ✓ — "yes"'})
    for proc in [*learned, odd]:
        text = (export_skill(proc, tmp_path, overwrite=True) / "SKILL.md").read_text()
        assert yaml.safe_load(text.split("---\n")[1]) == parse_front_matter(text)[0]


def test_round_trip_through_a_memory_keeps_the_content(learned: list[Procedure],
                                                       tmp_path: Path) -> None:
    proc = max(learned, key=lambda p: len(p.steps))
    stats = proc.with_stats(ProcedureStats(runs=7, finished=2, succeeded=1))
    assert "execution_count" in (export_skill(stats, tmp_path / "x") / "procedure.json").read_text()
    folder = export_skill(stats, tmp_path)
    imported = import_skill(folder)
    assert imported.execution_count == 0 and imported.success_rate is None  # not ours
    with Memory(":memory:") as mem:
        stored = mem.put_procedure(imported)
        assert mem.get_procedure(stored.name).content() == proc.content()


# ------------------------------------------------------------------- text-only

HAND_WRITTEN = """\
---
# a skill written by a person, no procedure.json
name: kettle-refunds
description: >-
  Decide whether a customer may get a refund for a damaged kettle
  and explain the policy. Use when a customer asks for a refund.
license: Apache-2.0
metadata:
  author: support-team
  version: "1.0"
allowed-tools:
  - Read
  - Bash(jq:*)
---

# Kettle refunds

1. Look up the order with `get_order_details`.
2. Refund within 30 days when the kettle arrived cracked or leaking.
3. Otherwise offer an exchange.
"""


def test_text_only_skill_becomes_a_searchable_procedure(learned: list[Procedure],
                                                        tmp_path: Path) -> None:
    folder = write_skill(tmp_path, "kettle-refunds", HAND_WRITTEN)
    proc = import_skill(folder)
    assert proc.name == "kettle-refunds" and proc.steps == [] and proc.params == []
    assert proc.tags == [TEXT_ONLY_TAG] and is_text_only(proc)
    assert proc.description.startswith(
        "Decide whether a customer may get a refund for a damaged kettle and explain the "
        "policy. Use when a customer asks for a refund.\n\n# Kettle refunds\n\n1. Look up")
    assert proc.description.endswith("3. Otherwise offer an exchange.")
    with Memory(":memory:") as mem:
        mem.put_procedure(learned[0])
        mem.put_procedure(proc)
        for query in ("kettle arrived leaking", "refund a damaged kettle"):
            assert mem.search(query)[0].procedure.name == "kettle-refunds"


def test_text_only_skill_round_trips_even_without_procedure_json(tmp_path: Path) -> None:
    proc = import_skill(write_skill(tmp_path / "in", "kettle-refunds", HAND_WRITTEN))
    folder = export_skill(proc, tmp_path / "out")
    text = (folder / "SKILL.md").read_text(encoding="utf-8")
    assert "procmem-kind: \"text-only\"" in text and "\n# Kettle refunds\n" in text
    assert import_skill(folder).content() == proc.content()
    (folder / "procedure.json").unlink()
    assert import_skill(folder).content() == proc.content()


def test_a_skill_with_only_front_matter_has_its_description(tmp_path: Path) -> None:
    folder = write_skill(tmp_path, "tiny", "---\nname: tiny\ndescription: Say hi.\n---\n")
    proc = import_skill(folder)
    assert proc.description == "Say hi." and proc.steps == []


# ------------------------------------------------------------- invalid skills

GOOD_HEAD = "name: demo\ndescription: Does a thing.\n"


@pytest.mark.parametrize(("text", "field"), [
    ("description: Does a thing.\n", "'name': missing"),
    ("name: demo\n", "'description': missing"),
    ("name: Demo\ndescription: x\n", "'name': 'Demo' must be lowercase"),
    ("name: de--mo\ndescription: x\n", "'name': 'de--mo' must be lowercase"),
    ("name: -demo\ndescription: x\n", "'name': '-demo' must be lowercase"),
    ("name: demo_1\ndescription: x\n", "'name': 'demo_1' must be lowercase"),
    ("name: " + "a" * 65 + "\ndescription: x\n", "'name': 65 characters, at most 64"),
    ("name: other\ndescription: x\n", "'name': 'other' does not match the folder name 'demo'"),
    ("name: demo\ndescription: " + "x" * 1025 + "\n", "'description': 1025 characters"),
    ("name: demo\ndescription: ''\n", "'description': must be a non-empty string"),
    ("name: demo\ndescription:\n", "'description': missing"),
    (GOOD_HEAD + "version: 2\n", "'version': not an Agent Skills field"),
    (GOOD_HEAD + "compatibility: ''\n", "'compatibility': must be a string of 1-500"),
    (GOOD_HEAD + "metadata: plain\n", "'metadata': must be a map"),
    (GOOD_HEAD + "metadata:\n  - a\n", "'metadata': must be a map"),
    (GOOD_HEAD + "allowed-tools:\n  a: b\n", "'allowed-tools': must be a string or a list"),
])
def test_invalid_front_matter_names_the_file_and_field(tmp_path: Path, text: str,
                                                       field: str) -> None:
    folder = write_skill(tmp_path, "demo", f"---\n{text}---\nBody.\n")
    with pytest.raises(UsageError) as info:
        import_skill(folder)
    message = str(info.value)
    assert message.startswith(f"{folder / 'SKILL.md'}: front matter field ")
    assert field in message


@pytest.mark.parametrize(("text", "problem"), [
    ("# Just markdown\n", "no YAML front matter"),
    ("", "no YAML front matter"),
    ("---\nname: demo\ndescription: x\n", "not closed by a line '---'"),
    ("---\nname: demo\n\tdescription: x\n---\n", ":3: YAML error in the front matter"),
    ("---\nname: demo\ndescription: \"open\n---\n", ":3: YAML error in the front matter: "
                                                    "unterminated or malformed double-quoted"),
    ("---\nname: demo\nname: demo\ndescription: x\n---\n", ":3: YAML error in the front "
                                                           "matter: duplicate key 'name'"),
    ("---\nname: &a demo\ndescription: x\n---\n", "anchors, aliases, tags"),
    ("---\nname: demo\ndescription: x\nmetadata:\n  a:\n    b: c\n---\n",
     ":6: YAML error in the front matter: nested blocks deeper than one level"),
    ("---\nname: demo\ndescription: x\nmetadata: {a: b}\n---\n", "flow mappings"),
    ("---\nname demo\ndescription: x\n---\n", ":2: YAML error in the front matter: "
                                              "expected 'key: value'"),
    ("---\nname: demo\ndescription: \"bad \\q escape\"\n---\n", "unknown escape '\\q'"),
])
def test_yaml_errors_name_the_file_and_line(tmp_path: Path, text: str, problem: str) -> None:
    folder = write_skill(tmp_path, "demo", text)
    with pytest.raises(UsageError) as info:
        import_skill(folder)
    assert str(info.value).startswith(str(folder / "SKILL.md"))
    assert problem in str(info.value)


def test_missing_skill_file_and_folder_are_clear(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match=r"empty/SKILL.md: missing"):
        import_skill(tmp_path / "empty")
    with pytest.raises(UsageError, match="not a folder"):
        import_skill(tmp_path / "nowhere")
    with pytest.raises(UsageError, match=r"no SKILL.md in it or in its sub-folders"):
        find_skill_folders(tmp_path / "empty")


@pytest.mark.parametrize(("content", "problem"), [
    ("{not json", "field '(document)'"),
    (json.dumps({"name": "demo", "steps": [{"id": "bad id", "action": "x"}]}),
     "field 'steps.0.id'"),
    (json.dumps({"name": "demo", "steps": [{"id": "s1", "action": "x",
                                            "args": {"a": {"$step": "s9"}}}]}),
     "field 'steps.0.args'"),
    (json.dumps({"name": "demo", "params": [], "steps": [
        {"id": "s1", "action": "x", "args": {"a": {"$param": "order_id"}}}]}),
     "unknown param 'order_id'"),
])
def test_invalid_procedure_json_is_an_error_naming_the_file(tmp_path: Path, content: str,
                                                            problem: str) -> None:
    folder = write_skill(tmp_path, "demo", f"---\n{GOOD_HEAD}---\n")
    (folder / "procedure.json").write_text(content, encoding="utf-8")
    with pytest.raises(InvalidProcedure) as info:
        import_skill(folder)
    assert f"{folder / 'procedure.json'}: " in str(info.value) and problem in str(info.value)


# ------------------------------------------------------------------ export rules


def test_export_refuses_a_folder_holding_another_skill(tmp_path: Path) -> None:
    write_skill(tmp_path, "greet", "---\nname: greet\ndescription: Hand-written.\n---\n")
    proc = Procedure(name="greet", steps=[Step(id="s1", action="say_hello")])
    with pytest.raises(Conflict, match="holds a skill not exported by procmem"):
        export_skill(proc, tmp_path)
    assert "Hand-written" in (tmp_path / "greet" / "SKILL.md").read_text()
    export_skill(proc, tmp_path, overwrite=True)
    export_skill(proc.model_copy(update={"version": 2}), tmp_path)  # same procedure: fine
    assert import_skill(tmp_path / "greet").version == 2
    with pytest.raises(Conflict, match="holds procedure 'greet', not 'Greet'"):
        export_skill(proc.model_copy(update={"name": "Greet"}), tmp_path)


def test_colliding_skill_names_get_distinct_folders_and_nothing_is_half_written(
        tmp_path: Path) -> None:
    a = Procedure(name="ship_order", steps=[Step(id="s1", action="ship")])
    b = Procedure(name="ship-order", steps=[Step(id="s1", action="ship")])
    folders = export_skills([a, b], tmp_path / "out")
    assert folders[0] != folders[1]
    assert all(f.name.startswith("ship-order-") for f in folders)
    assert [import_skill(f).name for f in folders] == ["ship_order", "ship-order"]
    write_skill(tmp_path / "two", "ship-order", "---\nname: ship-order\ndescription: x\n---\n")
    c = Procedure(name="pack", steps=[Step(id="s1", action="pack")])
    with pytest.raises(Conflict):
        export_skills([c, a], tmp_path / "two")
    assert not (tmp_path / "two" / "pack").exists()


def test_export_rejects_an_invalid_skill_name(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="'name': 'Bad_Name' must be lowercase"):
        export_skill(Procedure(name="x"), tmp_path, name="Bad_Name")


def test_find_skill_folders(tmp_path: Path) -> None:
    one = write_skill(tmp_path / "lib", "b-skill", f"---\n{GOOD_HEAD}---\n")
    two = write_skill(tmp_path / "lib", "a-skill", f"---\n{GOOD_HEAD}---\n")
    (tmp_path / "lib" / "notes").mkdir()
    assert find_skill_folders(tmp_path / "lib") == [two, one]
    assert find_skill_folders(one) == [one]


# ------------------------------------------------------------------ YAML subset

YAML_CASES: list[tuple[str, dict[str, Any]]] = [
    ("a: plain text # comment\nb: 'it''s'\nc: \"tab\\tnew\\nline \\u00e9\"\n",
     {"a": "plain text", "b": "it's", "c": "tab\tnew\nline é"}),
    ("d: |\n  line 1\n    indented\n\n  line 3\ne: x\n",
     {"d": "line 1\n  indented\n\nline 3\n", "e": "x"}),
    ("f: >\n  folded\n  text\n\n  para\n", {"f": "folded text\npara\n"}),
    ("g: |-\n  keep\n  no newline\nh: >+\n  keep\n\n", {"g": "keep\nno newline", "h": "keep\n\n"}),
    ("i: [a, 'b c', \"d\"]\nj:\n- x\n- y\n", {"i": ["a", "b c", "d"], "j": ["x", "y"]}),
    ("k: a plain\n  continued line\n\n  and a paragraph\n",
     {"k": "a plain continued line\nand a paragraph"}),
    ("m:\n  one: '1'\n  two: two # c\nn:\n", {"m": {"one": "1", "two": "two"}, "n": None}),
    ("o: Use when: the user asks\n", {"o": "Use when: the user asks"}),
]


@pytest.mark.parametrize(("text", "expected"), YAML_CASES)
def test_yaml_subset_parser(text: str, expected: dict[str, Any]) -> None:
    fields, body = parse_front_matter(f"---\n{text}---\nbody\n")
    assert fields == expected and body == "body"


@pytest.mark.parametrize(("text", "expected"), YAML_CASES[:-1])
def test_yaml_subset_parser_agrees_with_pyyaml(text: str, expected: dict[str, Any]) -> None:
    yaml = pytest.importorskip("yaml")
    assert yaml.safe_load(text) == expected
