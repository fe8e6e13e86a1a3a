"""Agent Skills folders: export a procedure as a skill, import a skill as a procedure.

An Agent Skill (https://agentskills.io/specification; Anthropic's "Agent Skills"
docs) is a folder holding ``SKILL.md``: YAML front matter between ``---`` lines
with at least ``name`` (1-64 characters of ``a-z``, ``0-9`` and ``-``, no
leading, trailing or doubled hyphen, equal to the folder name) and
``description`` (1-1024 characters: what the skill does and when to use it),
optionally ``license``, ``compatibility`` (1-500 characters), ``metadata`` (a
map of strings) and ``allowed-tools``; then a Markdown body of instructions.

Export (:func:`export_skill`) writes ``<dir>/<skill-name>/SKILL.md`` whose body
is :func:`procmem.formats.export.to_markdown` and ``procedure.json`` beside it (the exact
procedure, :func:`procmem.formats.export.to_json`). The front matter's ``metadata``
names the procedure (``procmem-procedure``, ``procmem-version``, ``procmem-kind``).

Import (:func:`import_skill`) validates ``SKILL.md`` first, then:

* with ``procedure.json``: that procedure, same content (an export/import round
  trip keeps :meth:`Procedure.content`); derived statistics are reset, they
  describe executions in another memory;
* without it: a **text-only** procedure, followed by an LLM rather than
  replayed: ``name`` from the front matter, ``description`` = the front-matter
  description, a blank line, then the Markdown body; zero steps, no params,
  tags ``["text-only"]``. Its body is therefore in the search index. Exporting a
  text-only procedure writes the body back, so the SKILL.md alone round-trips.

Invariants:
    * Every problem is an error naming the file, and the field or line: a
      front-matter problem is a :class:`~procmem.core.errors.UsageError`, a bad
      ``procedure.json`` an :class:`~procmem.core.errors.InvalidProcedure`; an
      invalid ``procedure.json`` is an error, never silently ignored.
    * Front matter follows the reference validator (``skills-ref``): unknown
      top-level fields are errors (put them under ``metadata``). Names are ASCII.
    * No YAML dependency: the front matter is read by a parser of the YAML
      subset skills use (``key: value`` with plain, quoted or ``|``/``>`` block
      scalars, flow ``[a, b]`` lists, one nested level of map or ``- item``
      list, comments). Anything else (anchors, tags, deeper nesting) is an
      error naming the line. Scalars are strings. What we write, PyYAML reads
      the same way.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..core.checks import check_templates
from ..core.errors import Conflict, InvalidProcedure, InvalidTemplate, UsageError
from ..core.model import Lineage, Procedure
from .export import (
    MAX_DESCRIPTION,
    MAX_NAME,
    PROCEDURE_FILE,
    SKILL_FILE,
    SKILL_NAME,
    TEXT_ONLY_TAG,
    is_text_only,
    skill_markdown,
    skill_name,
    to_json,
)
from .validation import first_problem

__all__ = [
    "ALLOWED_FIELDS",
    "PROCEDURE_FILE",
    "SKILL_FILE",
    "TEXT_ONLY_TAG",
    "Skill",
    "export_skill",
    "export_skills",
    "find_skill_folders",
    "import_skill",
    "is_text_only",
    "parse_front_matter",
    "read_skill",
    "skill_name",
    "validate_front_matter",
]

ALLOWED_FIELDS = ("name", "description", "license", "compatibility", "metadata", "allowed-tools")
"""Front-matter fields the Agent Skills specification defines."""

MAX_COMPATIBILITY = 500


@dataclass(frozen=True)
class Skill:
    """One validated skill folder.

    Attributes:
        path: The folder.
        name: Front-matter ``name`` (equal to the folder name).
        description: Front-matter ``description``, stripped.
        body: The Markdown after the front matter, stripped.
        fields: The whole front matter (strings, lists of strings, maps of strings).
    """

    path: Path
    name: str
    description: str
    body: str
    fields: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------- front matter


def parse_front_matter(text: str, source: str = SKILL_FILE) -> tuple[dict[str, Any], str]:
    """Split a SKILL.md text into its front matter (parsed) and its body.

    Args:
        text: The whole file. It must start with a line ``---``; the front
            matter ends at the next line ``---`` (or ``...``).
        source: File name used in error messages.

    Returns:
        ``(fields, body)``: the front matter as a dict, the rest of the text.

    Raises:
        UsageError: No front matter, front matter not closed, or a YAML
            construct outside the supported subset (message names file and line).
    """
    lines = text.lstrip("\ufeff").splitlines()
    if not lines or lines[0].rstrip() != "---":
        raise UsageError(f"{source}: no YAML front matter (the file must start with a "
                         "line '---', then 'name: ...' and 'description: ...', then '---')")
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in ("---", "...")), None)
    if end is None:
        raise UsageError(f"{source}: the YAML front matter is not closed by a line '---'")
    return _Yaml(lines[1:end], source).parse(), "\n".join(lines[end + 1:])


_KEY = re.compile(r"^([A-Za-z0-9_][A-Za-z0-9_.-]*)[ \t]*:(?:[ \t]+(.*))?$")
_BLOCK = re.compile(r"^([|>])([+-]?)([1-9]?)[ \t]*(?:#.*)?$")
_ESCAPES = {"0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v",
            "f": "\f", "r": "\r", "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\",
            "N": "\x85", "_": "\xa0", "L": "\u2028", "P": "\u2029"}
_ESCAPE = re.compile(r"\\(x[0-9A-Fa-f]{2}|u[0-9A-Fa-f]{4}|U[0-9A-Fa-f]{8}|.)", re.S)


class _Yaml:
    """The YAML subset of skill front matter (see the module docstring)."""

    def __init__(self, lines: list[str], source: str) -> None:
        self.lines, self.source = lines, source

    def error(self, index: int, problem: str) -> UsageError:
        return UsageError(f"{self.source}:{index + 2}: YAML error in the front matter: {problem}")

    def parse(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        lines, i = self.lines, 0
        while i < len(lines):
            raw = lines[i]
            if not raw.strip() or raw.lstrip().startswith("#"):
                i += 1
                continue
            if raw[0] in " \t":
                raise self.error(i, "unexpected indentation (top-level lines are 'key: value')")
            m = _KEY.match(raw.rstrip())
            if m is None:
                raise self.error(i, f"expected 'key: value', got {raw.strip()!r}")
            key, rest = m.group(1), (m.group(2) or "").strip()
            if key in out:
                raise self.error(i, f"duplicate key {key!r}")
            j = i + 1
            while j < len(lines) and (not lines[j].strip() or lines[j][0] in " \t"
                                      or (not rest and lines[j].startswith("-"))):
                j += 1
            out[key] = self.value(rest, i, j)
            i = j
        return out

    def value(self, rest: str, i: int, end: int) -> Any:
        block = self.lines[i + 1:end]
        for k, line in enumerate(block):
            indent = line[:len(line) - len(line.lstrip())]
            if "\t" in indent and line.strip():
                raise self.error(i + 1 + k, "tabs are not allowed in YAML indentation")
        if _BLOCK.match(rest):
            return self.block_scalar(rest, i, block)
        if rest.startswith("#"):
            rest = ""
        if not rest:
            return self.nested(i, block)
        if rest[0] in "&*!%@`":
            raise self.error(i, f"unsupported YAML ({rest[0]!r}: anchors, aliases, tags and "
                             "reserved indicators are not supported in skill front matter)")
        if rest.startswith("{"):
            raise self.error(i, "flow mappings ('{...}') are not supported; use an indented block")
        if rest.startswith("["):
            if block and any(b.strip() for b in block):
                raise self.error(i + 1, "a flow list '[...]' must fit on one line")
            return self.flow_list(rest, i)
        return self.scalar(self.fold(rest, block), i)

    def fold(self, first: str, block: list[str]) -> str:
        """A multi-line flow scalar: lines join with spaces, blank lines are newlines."""
        text = first
        for line in block:
            text += "\n" if not line.strip() else (
                ("" if text.endswith("\n") else " ") + line.strip())
        return text.rstrip("\n")

    def scalar(self, text: str, i: int) -> str:
        text = text.strip()
        if text[:1] == '"':
            return self.double_quoted(text, i)
        if text[:1] == "'":
            close = re.match(r"^'((?:[^']|'')*)'[ \t]*(?:#.*)?$", text, re.S)
            if close is None:
                raise self.error(i, f"unterminated or malformed single-quoted string {text!r}")
            return close.group(1).replace("''", "'")
        if text[:1] in "&*!%@`{[":
            raise self.error(i, f"unsupported YAML value {text!r}")
        return re.split(r"[ \t]#", text, maxsplit=1)[0].rstrip()

    def double_quoted(self, text: str, i: int) -> str:
        m = re.match(r'^"((?:[^"\\]|\\.)*)"[ \t]*(?:#.*)?$', text, re.S)
        if m is None:
            raise self.error(i, f"unterminated or malformed double-quoted string {text!r}")

        def unescape(esc: re.Match[str]) -> str:
            code = esc.group(1)
            if len(code) > 1:
                return chr(int(code[1:], 16))
            if code not in _ESCAPES:
                raise self.error(i, f"unknown escape '\\{code}' in a quoted string")
            return _ESCAPES[code]

        return _ESCAPE.sub(unescape, m.group(1))

    def flow_list(self, text: str, i: int) -> list[str]:
        text = re.split(r"\][ \t]*(?:#.*)?$", text)[0]
        if not text.startswith("["):
            raise self.error(i, "malformed flow list")
        items = re.findall(r"""\s*("(?:[^"\\]|\\.)*"|'(?:[^']|'')*'|[^,]+)\s*(?:,|$)""", text[1:])
        return [self.scalar(item, i) for item in items if item.strip()]

    def nested(self, i: int, block: list[str]) -> Any:
        rows = [(i + 1 + k, line) for k, line in enumerate(block)
                if line.strip() and not line.lstrip().startswith("#")]
        if not rows:
            return None
        indent = len(rows[0][1]) - len(rows[0][1].lstrip())
        for index, line in rows:
            if len(line) - len(line.lstrip()) != indent:
                raise self.error(index, "nested blocks deeper than one level are not supported")
        if rows[0][1].lstrip().startswith("-"):
            items = []
            for index, line in rows:
                m = re.match(r"^-(?:[ \t]+(.*))?$", line.strip())
                if m is None:
                    raise self.error(index, f"expected a list item '- value', got {line.strip()!r}")
                items.append(self.scalar(m.group(1) or "", index))
            return items
        mapping: dict[str, str] = {}
        for index, line in rows:
            m = _KEY.match(line.strip())
            if m is None or not (m.group(2) or "").strip():
                raise self.error(index, f"expected 'key: value' (a string), got {line.strip()!r}")
            if m.group(1) in mapping:
                raise self.error(index, f"duplicate key {m.group(1)!r}")
            mapping[m.group(1)] = self.scalar(m.group(2), index)
        return mapping

    def block_scalar(self, header: str, i: int, block: list[str]) -> str:
        m = _BLOCK.match(header)
        assert m is not None
        style, chomp, explicit = m.groups()
        content = [line.rstrip("\r") for line in block]
        first = next((line for line in content if line.strip()), "")
        indent = int(explicit) if explicit else len(first) - len(first.lstrip(" "))
        if first and indent == 0:
            raise self.error(i + 1, "a block scalar's lines must be indented")
        lines: list[str] = []
        for k, line in enumerate(content):
            if line.strip() and len(line) - len(line.lstrip(" ")) < indent:
                raise self.error(i + 1 + k, "less indented line inside a block scalar")
            lines.append(line[indent:] if line.strip() else "")
        while lines and lines[-1] == "":
            lines.pop()
        trailing = len(content) - len(lines)
        text = "\n".join(lines) if style == "|" else _fold(lines)
        if chomp == "-" or not text:
            return text
        return text + "\n" * (1 + trailing if chomp == "+" else 1)


def _fold(lines: list[str]) -> str:
    """YAML 1.2 line folding of ``>`` block lines (§8.1.3): a line break between two
    text lines is a space, ``n`` blank lines are ``n`` newlines, more-indented lines
    keep their breaks, leading blank lines are newlines."""
    text = ""
    for k, line in enumerate(lines):
        prev = lines[k - 1] if k else None
        if prev is None or (not text.strip("\n") and not line):
            text += line if line else "\n"
            continue
        if line and prev and not line.startswith(" ") and not prev.startswith(" "):
            text += " " + line
        elif not line:
            text += "\n"
        else:
            text += ("" if not prev and not line.startswith(" ") else "\n") + line
    return text


def validate_front_matter(fields: dict[str, Any], *, folder_name: str | None = None,
                          source: str = SKILL_FILE) -> None:
    """Check front matter against the Agent Skills specification.

    Rules (https://agentskills.io/specification, as the ``skills-ref`` validator
    applies them): only :data:`ALLOWED_FIELDS`; ``name`` required, 1-64 of
    ``a-z0-9-``, no leading, trailing or doubled hyphen, equal to ``folder_name``
    when given; ``description`` required, a non-blank string of at most 1024
    characters; ``compatibility`` 1-500 characters; ``license`` a string;
    ``metadata`` a map of strings; ``allowed-tools`` a string or a list of strings.

    Raises:
        UsageError: The first problem, as ``"<source>: front matter field '<f>': ..."``.
    """
    def fail(name: str, problem: str) -> UsageError:
        return UsageError(f"{source}: front matter field {name!r}: {problem}")

    unknown = sorted(set(fields) - set(ALLOWED_FIELDS))
    if unknown:
        raise fail(unknown[0], "not an Agent Skills field (allowed: " + ", ".join(ALLOWED_FIELDS)
                   + "; put other keys under 'metadata')")
    for required in ("name", "description"):
        if required not in fields or fields[required] is None:
            raise fail(required, "missing (required)")
    name = fields["name"]
    if not isinstance(name, str) or not name:
        raise fail("name", "must be a non-empty string")
    if len(name) > MAX_NAME:
        raise fail("name", f"{len(name)} characters, at most {MAX_NAME} allowed")
    if not SKILL_NAME.match(name):
        raise fail("name", f"{name!r} must be lowercase letters a-z, digits and single "
                   "hyphens, not starting or ending with a hyphen")
    if folder_name is not None and name != folder_name:
        raise fail("name", f"{name!r} does not match the folder name {folder_name!r}")
    description = fields["description"]
    if not isinstance(description, str) or not description.strip():
        raise fail("description", "must be a non-empty string")
    if len(description) > MAX_DESCRIPTION:
        raise fail("description",
                   f"{len(description)} characters, at most {MAX_DESCRIPTION} allowed")
    if "compatibility" in fields:
        value = fields["compatibility"]
        if not isinstance(value, str) or not 1 <= len(value) <= MAX_COMPATIBILITY:
            raise fail("compatibility", f"must be a string of 1-{MAX_COMPATIBILITY} characters")
    if "license" in fields and not isinstance(fields["license"], str):
        raise fail("license", "must be a string")
    if "metadata" in fields:
        meta = fields["metadata"]
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise fail("metadata", "must be a map of string keys to string values")
    if "allowed-tools" in fields:
        tools = fields["allowed-tools"]
        if not (isinstance(tools, str)
                or (isinstance(tools, list) and all(isinstance(t, str) for t in tools))):
            raise fail("allowed-tools", "must be a string or a list of strings")


def read_skill(folder: str | Path) -> Skill:
    """Read and validate one skill folder's ``SKILL.md``.

    Raises:
        UsageError: The folder or its SKILL.md is missing or unreadable, or the
            front matter is invalid (file and field or line named).
    """
    path = Path(folder)
    skill_md = path / SKILL_FILE
    if not path.is_dir():
        raise UsageError(f"{path}: not a folder (a skill is a folder holding {SKILL_FILE})")
    if not skill_md.is_file():
        raise UsageError(f"{skill_md}: missing (a skill folder must hold {SKILL_FILE})")
    try:
        text = skill_md.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UsageError(f"{skill_md}: cannot read: {err}") from err
    fields, body = parse_front_matter(text, str(skill_md))
    validate_front_matter(fields, folder_name=path.resolve().name, source=str(skill_md))
    return Skill(path=path, name=fields["name"], description=fields["description"].strip(),
                 body=body.strip(), fields=fields)


def find_skill_folders(path: str | Path) -> list[Path]:
    """``path`` itself when it holds a SKILL.md, else its sub-folders that do (sorted).

    Raises:
        UsageError: ``path`` is not a folder, or no SKILL.md is found.
    """
    root = Path(path)
    if not root.is_dir():
        raise UsageError(f"{root}: not a folder (a skill is a folder holding {SKILL_FILE})")
    if (root / SKILL_FILE).is_file():
        return [root]
    found = sorted(p for p in root.iterdir() if p.is_dir() and (p / SKILL_FILE).is_file())
    if not found:
        raise UsageError(f"{root}: no {SKILL_FILE} in it or in its sub-folders")
    return found


# --------------------------------------------------------------------- import


def import_skill(folder: str | Path) -> Procedure:
    """The procedure a skill folder holds.

    ``SKILL.md`` is validated first. With a ``procedure.json`` beside it, that
    procedure (same :meth:`Procedure.content`; statistics reset); without one,
    a text-only procedure (see the module docstring).

    The procedure must be the one the folder declares: its name equals the
    ``procmem-procedure`` of SKILL.md's ``metadata`` when there is one, else its
    :func:`skill_name` is the folder's skill name.

    Raises:
        UsageError: A SKILL.md problem (file and field or line named).
        InvalidProcedure: ``procedure.json`` is not JSON, not a valid procedure,
            has a template reference that cannot bind (file and field named), or
            names another procedure than the folder declares.
    """
    skill = read_skill(folder)
    json_path = skill.path / PROCEDURE_FILE
    if json_path.exists():
        proc = _load_procedure(json_path, skill.name)
        meta = skill.fields.get("metadata")
        declared = meta.get("procmem-procedure") if isinstance(meta, dict) else None
        if declared is not None and proc.name != declared:
            raise InvalidProcedure(skill.name, f"{json_path}: names procedure {proc.name!r} but "
                                   f"{SKILL_FILE} declares {declared!r} (metadata "
                                   "procmem-procedure); a skill only imports as itself")
        if declared is None and skill_name(proc.name) != skill.name:
            raise InvalidProcedure(skill.name, f"{json_path}: names procedure {proc.name!r}, "
                                   f"whose skill name is {skill_name(proc.name)!r}, not the "
                                   f"folder's {skill.name!r}; a skill only imports as itself")
        return proc
    description = skill.description + (f"\n\n{skill.body}" if skill.body else "")
    lineage = Lineage(reason=f"imported from a text-only Agent Skill ({SKILL_FILE})")
    return Procedure(name=skill.name, description=description, tags=[TEXT_ONLY_TAG],
                     lineage=lineage)


def _load_procedure(path: Path, skill: str) -> Procedure:
    try:
        proc = Procedure.model_validate_json(path.read_bytes())
    except OSError as err:
        raise InvalidProcedure(skill, f"{path}: cannot read: {err}") from err
    except ValidationError as err:
        first = first_problem(err)
        where = first.where or "(document)"
        raise InvalidProcedure(skill, f"{path}: field {where!r}: {first.msg}") from err
    try:
        check_templates(proc)
    except InvalidTemplate as err:
        k = next((i for i, s in enumerate(proc.steps) if s.id == err.step_id), 0)
        raise InvalidProcedure(skill, f"{path}: field 'steps.{k}.args': {err}") from err
    return proc  # run statistics in the file are not ours: validation drops them


# --------------------------------------------------------------------- export


def export_skill(procedure: Procedure, directory: str | Path, *, name: str | None = None,
                 overwrite: bool = False) -> Path:
    """Write ``procedure`` as the skill folder ``<directory>/<name>/``.

    Files: ``SKILL.md`` (front matter ``name``, ``description``, ``metadata``;
    body :func:`procmem.formats.export.to_markdown`, or the instructions of a text-only
    procedure) and ``procedure.json`` (:func:`procmem.formats.export.to_json`).

    Args:
        procedure: The version to export.
        directory: The parent folder, created if missing.
        name: The skill name; default :func:`skill_name` of the procedure name.
        overwrite: Replace a folder that holds another skill.

    Returns:
        The skill folder.

    Raises:
        UsageError: ``name`` is not a valid skill name.
        Conflict: The folder holds another skill (a SKILL.md whose
            ``procedure.json`` is missing or names another procedure) and
            ``overwrite`` is false. Re-exporting the same procedure replaces it.
    """
    folder, text = _prepare(procedure, directory, name or skill_name(procedure.name), overwrite)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / SKILL_FILE).write_text(text, encoding="utf-8")
        (folder / PROCEDURE_FILE).write_text(
            json.dumps(to_json(procedure), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as err:
        raise UsageError(f"{folder}: cannot write the skill: {err}") from err
    return folder


def _prepare(procedure: Procedure, directory: str | Path, name: str,
             overwrite: bool) -> tuple[Path, str]:
    """The skill folder and SKILL.md text, after every check that can fail (nothing written)."""
    folder = Path(directory) / name
    text = skill_markdown(procedure, name)
    validate_front_matter(parse_front_matter(text)[0], folder_name=name,
                          source=str(folder / SKILL_FILE))
    if (folder / SKILL_FILE).exists() and not overwrite:
        owner = _owner(folder / PROCEDURE_FILE)
        if owner != procedure.name:
            held = f"procedure {owner!r}" if owner else "a skill not exported by procmem"
            raise Conflict("skill folder", str(folder),
                           f"holds {held}, not {procedure.name!r} (pass overwrite to replace it)")
    return folder, text


def _owner(json_path: Path) -> str | None:
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("name") if isinstance(data, dict) else None


def export_skills(procedures: Iterable[Procedure], directory: str | Path, *,
                  overwrite: bool = False) -> list[Path]:
    """Export several procedures as skill folders under ``directory``.

    Procedures whose :func:`skill_name` collide (``a_b`` and ``a-b``) each get
    ``-`` + 8 hex digits of the SHA-1 of their procedure name appended, so
    every folder is distinct whatever the order.

    Returns:
        The skill folders, in the order of ``procedures``.

    Raises:
        Conflict, UsageError: As :func:`export_skill`; every folder is checked
            before any is written.
    """
    procs = list(procedures)
    counts = Counter(skill_name(p.name) for p in procs)
    names = []
    for proc in procs:
        name = skill_name(proc.name)
        if counts[name] > 1:
            digest = hashlib.sha1(proc.name.encode()).hexdigest()[:8]
            name = f"{name[:55].rstrip('-')}-{digest}"
        _prepare(proc, directory, name, overwrite)  # check them all before writing any
        names.append(name)
    return [export_skill(p, directory, name=n, overwrite=overwrite)
            for p, n in zip(procs, names, strict=True)]
