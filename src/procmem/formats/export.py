"""Exports of a procedure: a Markdown "how-to" an LLM can follow, JSON, SKILL.md text.

:func:`to_markdown` renders one procedure version as instructions for a prompt:
the title and description, the params as ``{name}`` placeholders (type,
description, an example), then numbered steps (the tool to call, each argument
with its references in plain words, what the step expects, what to do when it
fails) and a note on where the procedure came from. :func:`to_json` is the full
procedure as JSON data (field aliases, e.g. ``schema``). :func:`skill_markdown`
is the ``SKILL.md`` text of an Agent Skill (https://agentskills.io/specification);
:mod:`procmem.formats.skills` writes and reads the skill folders.

Invariants:
    * Pure functions of the procedure: no I/O, no clock, no environment; the
      same procedure always renders the same text.
    * Every param appears as its ``{name}`` placeholder in the inputs section
      and every step's action appears in its numbered step.
    * References are never shown as raw ``$param`` / ``$step`` / ``$ask`` JSON:
      ``{"$param": "order_id"}`` is ``{order_id}``; ``{"$step": "s1", "path":
      "/orders/0"}`` is "the value at `/orders/0` of step 1's output";
      ``{"$ask": P, "from": R}`` is "ASK: P (choose from step 1's `/orders`)";
      a ``$select`` is "the `/id` of the one element of step 1's `/orders` whose
      `/status` equals "pending" (ASK if none or several match)".
    * A procedure without steps (a text-only skill, see :mod:`procmem.formats.skills`)
      renders its description as the instructions.
    * :func:`skill_name` and :func:`skill_description` always give values the
      Agent Skills specification accepts (name 1-64 of ``a-z0-9-``, description
      1-1024 characters).

Reference syntax: ``DESIGN.md`` (args templates) and :mod:`procmem.core.template`.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from ..core import template as tpl
from ..core.model import Check, OnError, Param, Procedure, Step

__all__ = [
    "PROCEDURE_FILE",
    "SKILL_FILE",
    "TEXT_ONLY_TAG",
    "check_words",
    "is_text_only",
    "on_error_words",
    "skill_description",
    "skill_markdown",
    "skill_name",
    "to_json",
    "to_markdown",
]

SKILL_FILE = "SKILL.md"
PROCEDURE_FILE = "procedure.json"
TEXT_ONLY_TAG = "text-only"
"""The tag of a procedure an LLM follows from its text (imported from a SKILL.md alone)."""
MAX_NAME, MAX_DESCRIPTION = 64, 1024
"""Agent Skills limits: ``name`` and ``description`` lengths (https://agentskills.io/specification)."""
SKILL_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
"""A valid skill name: ``a-z0-9`` and single inner hyphens (length checked apart)."""


def to_json(procedure: Procedure) -> dict[str, Any]:
    """The full procedure as JSON data (``by_alias``: a param's schema is ``schema``).

    ``Procedure.model_validate(to_json(p)) == p`` for every procedure ``p``.
    """
    return procedure.model_dump(mode="json", by_alias=True)


def _code(value: Any) -> str:
    """``value`` as compact JSON in a Markdown code span."""
    text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
    tick = "``" if "`" in text else "`"
    pad = " " if tick == "``" else ""
    return f"{tick}{pad}{text}{pad}{tick}"


def _type_words(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        return " or ".join(str(k) for k in kind)
    if isinstance(kind, str):
        return kind
    if "enum" in schema:
        return "one of " + ", ".join(_code(v) for v in schema["enum"])
    return "any JSON value"


def _param_line(param: Param) -> str:
    parts = [f"- `{{{param.name}}}` ({_type_words(param.schema_)}"
             + ("" if param.required else ", optional") + ")"]
    if param.description:
        parts.append(f": {param.description.rstrip('.')}.")
    else:
        parts.append(".")
    if "enum" in param.schema_ and "type" in param.schema_:
        parts.append(" One of " + ", ".join(_code(v) for v in param.schema_["enum"]) + ".")
    if param.examples:
        parts.append(f" Example: {_code(param.examples[0])}.")
    return "".join(parts)


class _Steps:
    """Step ids to 1-based numbers and actions, for readable ``$step`` references."""

    def __init__(self, steps: list[Step]) -> None:
        self.number = {s.id: i for i, s in enumerate(steps, 1)}
        self.action = {s.id: s.action for s in steps}
        self.choices = {s.choice for s in steps if s.choice is not None}

    def name(self, step_id: str) -> str:
        if step_id in self.number:
            return f"step {self.number[step_id]}"
        if step_id in self.choices:
            return f"choice `{step_id}`"
        return f"step {step_id!r}"

    def ref(self, node: dict[str, Any]) -> str:
        path = node.get("path", "")
        ref = str(node["$step"])
        owner = (f"the output of whichever alternative of choice `{ref}` ran"
                 if ref in self.choices else f"{self.name(ref)}'s output")
        return f"the value at `{path}` of {owner}" if path else f"the whole of {owner}"

    def source(self, node: dict[str, Any]) -> str:
        path = node.get("path", "")
        name = self.name(str(node["$step"]))
        return f"{name}'s `{path}`" if path else f"{name}'s output"


def _value(node: Any, steps: _Steps) -> str:
    """One args-template value in words (a one-liner; containers as JSON-like text)."""
    if isinstance(node, dict):
        if "$literal" in node:
            return _code(node["$literal"])
        if "$param" in node:
            return f"`{{{node['$param']}}}`"
        if "$step" in node:
            return steps.ref(node)
        if "$select" in node:
            return _selection(node, steps)
        if "$ask" in node:
            text = f"ASK: {node['$ask']}"
            src = node.get("from")
            if isinstance(src, dict) and "$select" in src:
                src = src["$select"]
            if isinstance(src, dict) and "$step" in src:
                text += f" (choose from {steps.source(src)})"
            return text
    return _code(node)


def _selection(node: dict[str, Any], steps: _Steps) -> str:
    """A ``$select`` node in words: which element of which list, and what of it."""
    conds = []
    for pred in node.get("where") or []:
        op = "contains" if "contains" in pred else "equals"
        want = pred.get(op)
        shown = f"`{{{want['$param']}}}`" if isinstance(want, dict) and "$param" in want \
            else _code(want.get("$literal") if isinstance(want, dict) and "$literal" in want
                       else want)
        conds.append(f"`{pred.get('path')}` {op} {shown}")
    get = node.get("get") or ""
    what = f"the `{get}` of" if get else ""
    return (f"{what} the one element of {steps.source(node['$select'])} whose "
            f"{' and '.join(conds) or '(any field)'} (ASK if none or several match)").strip()


def _has_ref(node: Any) -> bool:
    if isinstance(node, dict):
        if any(k in node for k in tpl.REF_KEYS):
            return True
        return any(_has_ref(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_ref(v) for v in node)
    return False


def _arg_lines(key: str | int, node: Any, steps: _Steps, indent: str) -> list[str]:
    """Bullet lines for one argument; containers holding references become nested bullets.

    ``key`` is an object key, or an int for a list item (shown 1-based as "item N").
    """
    label = f"{indent}- item {int(key) + 1}: " if isinstance(key, int) else f"{indent}- `{key}`: "
    is_ref = isinstance(node, dict) and any(k.startswith("$") for k in node)
    if is_ref or not _has_ref(node):
        return [label + _value(node, steps)]
    deeper = indent + "  "
    if isinstance(node, list):
        lines = [label + f"a list of {len(node)}:"]
        for i, item in enumerate(node):
            lines.extend(_arg_lines(i, item, steps, deeper))
        return lines
    lines = [label + "an object with:"]
    for k, v in node.items():
        lines.extend(_arg_lines(k, v, steps, deeper))
    return lines


def check_words(check: Check) -> str:
    """One ``expect`` check in words, e.g. ``"`/status` equals `\\"pending\\"`"``."""
    where = f"`{check.path}`" if check.path else "the output"
    if check.op == "exists":
        return f"the output has a value at `{check.path}`" if check.path else "there is an output"
    if check.op == "equals":
        return f"{where} equals {_code(check.value)}"
    if check.op == "contains":
        return f"{where} contains {_code(check.value)}"
    if check.op == "not_contains":
        return f"{where} does not contain {_code(check.value)}"
    kinds = check.value if isinstance(check.value, list) else [check.value]
    return f"{where} is of type " + " or ".join(str(k) for k in kinds)


def on_error_words(policy: OnError) -> str:
    """A step's failure policy in words (``OnError`` semantics, :mod:`procmem.core.model`)."""
    if policy.policy == "skip":
        return "note the failure and go on with the next step."
    if policy.policy == "retry":
        wait = ""
        if policy.backoff_s > 0:
            wait = (f", waiting {policy.backoff_s:g} s before the first retry and doubling "
                    "the wait each time")
        times = "once" if policy.retries == 1 else f"up to {policy.retries} times"
        return f"call it again {times}{wait}; if it still fails, stop and report the error."
    if policy.policy == "ask":
        return ("ask the user how to go on (they may give you the output to use instead), "
                "then continue.")
    return "stop here and report the error; do not run the later steps."


def _step_block(number: int, step: Step, steps: _Steps) -> list[str]:
    sub = step.subprocedure
    what = f"Run the procedure `{sub}`" if sub else f"Call the tool `{step.action}`"
    head = f"{number}. {what} (step `{step.id}`)"
    if step.description:
        head += f": {step.description.rstrip('.')}."
    else:
        head += "." if not step.args else " with:"
    lines = [head]
    if step.args and step.description:
        lines.append("   Arguments:")
    if any(k in step.args for k in tpl.REF_KEYS):
        lines.append(f"   - the whole arguments object: {_value(step.args, steps)}")
    else:
        for key, node in step.args.items():
            lines.extend(_arg_lines(key, node, steps, "   "))
    if not step.args:
        lines.append("   (no arguments)")
    if step.optional:
        lines.append("   Optional: make this call only when you have all its values; skip it "
                     "otherwise (no later step needs its output).")
    if step.choice is not None:
        lines.append(f"   Alternative {step.option} of choice `{step.choice}`: of the steps of "
                     f"this choice, do only those of ONE alternative, the first (lowest "
                     f"number) whose values you have; the output of its last step is "
                     f"choice `{step.choice}`'s output.")
    if step.side_effect is True:
        lines.append("   This call changes things (side effect): check every value first.")
    elif step.side_effect is False:
        lines.append("   This call only reads; it changes nothing.")
    if step.expect:
        lines.append("   Expect: " + "; ".join(check_words(c) for c in step.expect) + ".")
    lines.append(f"   If it fails: {on_error_words(step.on_error)}")
    return lines


def _lineage(procedure: Procedure) -> str:
    n = len(procedure.lineage.traces)
    if n:
        text = f"Learned from {n} demonstration{'s' if n != 1 else ''} (recorded traces)"
    else:
        text = "Written or imported, not learned from demonstrations"
    if procedure.lineage.parent_version is not None:
        text += f"; derived from version {procedure.lineage.parent_version}"
    if procedure.lineage.reason:
        text += f"; reason: {procedure.lineage.reason.rstrip('.')}"
    text += f". This is version {procedure.version}, status {procedure.status}"
    if procedure.execution_count:
        rate = ("" if procedure.success_rate is None
                else f", {procedure.success_rate:.0%} of finished runs succeeded")
        text += f"; replayed {procedure.execution_count} time(s){rate}"
    return text + "."


def to_markdown(procedure: Procedure) -> str:
    """A Markdown how-to an LLM can follow in a prompt.

    Sections: ``# name``, the description, ``## Inputs`` (each param as a
    ``{name}`` placeholder with its JSON Schema type, description and first
    example), ``## Steps`` (numbered; the tool to call, every argument with
    references in words, side effect, ``expect`` checks, ``on_error`` policy)
    and ``## Where this comes from`` (lineage: how many demonstrations, parent
    version, status). A text-only procedure (:func:`is_text_only`) shows the
    first paragraph of its description as the summary and the rest under
    ``## Instructions``, and says it has no replayable steps.

    Args:
        procedure: Any procedure version (statistics, if set, are mentioned).

    Returns:
        Markdown text ending with a newline.
    """
    steps = _Steps(procedure.steps)
    out = [f"# {procedure.name}", ""]
    summary, instructions = procedure.description.strip(), ""
    if is_text_only(procedure) and "\n\n" in summary:
        summary, instructions = (part.strip() for part in summary.split("\n\n", 1))
    if summary:
        out += [summary, ""]
    if procedure.tags:
        out += ["Tags: " + ", ".join(procedure.tags) + ".", ""]
    if instructions:
        out += ["## Instructions", "", instructions, ""]
    if procedure.params:
        out += ["## Inputs", "",
                "Replace each placeholder below with the value for the task at hand.", ""]
        out += [_param_line(p) for p in procedure.params]
        out.append("")
    out += ["## Steps", ""]
    if procedure.steps:
        out += ["Do these steps in order. `ASK:` marks a value you must decide or ask the "
                "user for; step outputs are addressed by JSON Pointer (RFC 6901).", ""]
        for number, step in enumerate(procedure.steps, 1):
            out += _step_block(number, step, steps)
            out.append("")
    else:
        out += ["This procedure has no replayable steps: follow the instructions above.", ""]
    out += ["## Where this comes from", "", _lineage(procedure), ""]
    return "\n".join(out)


# ------------------------------------------------------------------ SKILL.md


def is_text_only(procedure: Procedure) -> bool:
    """True for a procedure an LLM follows from its text: no steps, tagged ``text-only``."""
    return not procedure.steps and TEXT_ONLY_TAG in procedure.tags


def skill_name(procedure_name: str) -> str:
    """A spec-valid skill name for a procedure name (deterministic).

    Lowercased; every run of characters other than ``a-z0-9`` becomes one
    hyphen; hyphens are trimmed at both ends. A result longer than 64
    characters is cut to 55 and given ``-`` + 8 hex digits of the SHA-1 of the
    procedure name, so long names stay distinct. ``"Cancel_Order"`` ->
    ``"cancel-order"``.
    """
    name = re.sub(r"[^a-z0-9]+", "-", procedure_name.lower()).strip("-") or "procedure"
    if len(name) > MAX_NAME:
        digest = hashlib.sha1(procedure_name.encode()).hexdigest()[:8]
        name = f"{name[:55].rstrip('-')}-{digest}"
    return name


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit - 1].rsplit(" ", 1)[0]
    return cut + "…"


def skill_description(procedure: Procedure) -> str:
    """The front-matter ``description``: what the procedure does and when to use it.

    Text-only: the first paragraph of the description. Otherwise that paragraph
    plus the tools it calls and the inputs it takes (words an agent matches a
    task against). At most 1024 characters, never empty.
    """
    first = procedure.description.strip().split("\n\n", 1)[0].strip()
    if is_text_only(procedure):
        return _clip(first or f"The {procedure.name} skill.", MAX_DESCRIPTION)
    base = first or f"The {procedure.name} procedure."
    tools = list(dict.fromkeys(procedure.signature()))
    use = ""
    if tools:
        use = " Use it for tasks done by calling " + ", ".join(tools)
        if procedure.params:
            use += ", given " + ", ".join(p.name for p in procedure.params)
        use += "."
    return _clip(base.rstrip() + use, MAX_DESCRIPTION)


def _yaml_string(value: str) -> str:
    """``value`` as a YAML scalar: plain when unambiguous, else double-quoted (JSON escapes)."""
    if SKILL_NAME.match(value) and not value.isdigit() and value not in (
            "true", "false", "null", "yes", "no", "on", "off", "y", "n"):
        return value
    return json.dumps(value, ensure_ascii=False)


def skill_markdown(procedure: Procedure, name: str) -> str:
    """The SKILL.md text for ``procedure`` under the skill name ``name``."""
    kind = TEXT_ONLY_TAG if is_text_only(procedure) else "replayable"
    meta = {"procmem-procedure": procedure.name, "procmem-version": str(procedure.version),
            "procmem-kind": kind}
    head = ["---", f"name: {_yaml_string(name)}",
            f"description: {json.dumps(skill_description(procedure), ensure_ascii=False)}",
            "metadata:"]
    head += [f"  {k}: {json.dumps(v, ensure_ascii=False)}" for k, v in meta.items()]
    head.append("---")
    if is_text_only(procedure):
        parts = procedure.description.strip().split("\n\n", 1)
        body = parts[1].strip() if len(parts) > 1 else ""
    else:
        body = (to_markdown(procedure).rstrip() + f"\n\n`{PROCEDURE_FILE}` beside this file "
                "holds the exact procedure; procmem replays it (`procmem import-skill`).")
    return "\n".join(head) + "\n\n" + body + ("\n" if body else "")
