"""Secret redaction: the one step every trace passes before it is stored.

:class:`Redactor` finds secrets in any JSON-like value and replaces each with a
marker that names its kind, ``"[REDACTED:aws_key]"``. Four rules, in order:

* **Key names.** A dict value whose key contains a secret word
  (:data:`procmem.formats.record.DEFAULT_SECRET_KEYS`: ``password``, ``token``,
  ``authorization``, ...) is replaced whole (``max_tokens`` and ``author`` are kept).
* **Token shapes** (our own constant patterns): PEM private keys, bearer
  tokens, ``sk-…`` keys, AWS access key ids, GitHub tokens, JWTs, credentials
  in URLs (``https://user:pw@host``) and ``password=…`` assignments.
* **Detector library.** Every long token (16+ characters of key alphabet) is
  checked by the regex plugins of Yelp's ``detect-secrets`` (cloud keys: AWS,
  Azure, IBM, GitHub/GitLab, Slack, Stripe, Twilio, SendGrid, npm, PyPI,
  OpenAI, JWT, private keys, ...) and by its Shannon-entropy measures: a
  base64-alphabet token of 20+ characters with upper case, lower case and
  digits at entropy >= 4.5 bits, or a hex token of 20+ characters (letters and
  digits) at >= 3.0 bits, is redacted. We use
  ``detect-secrets`` because it is maintained, widely deployed as a pre-commit
  scanner, and its plugin set covers the key formats of the major clouds and
  SaaS APIs; its own keyword plugin is not used (it expects source code), our
  free-text rules below replace it.
* **Free text.** "my password is hunter2", "api key: abc", "PIN 1234 is"... A
  secret word followed by ``is``/``:``/``=`` and a value: the value is replaced.
* **User patterns** (``Redactor(patterns={"employee_id": r"EMP-\\d{6}"})``), run on
  RE2 (linear time): each match is replaced by ``[REDACTED:employee_id]``.

Invariants:
    * Redaction never mutates its input and is idempotent: a marker is never
      redacted again, and text holding no secret comes back unchanged.
    * A string that is JSON text is parsed and redacted as JSON (the key rule
      applies inside it); it is re-serialized only when something changed.
    * The redactor keeps no secret it found: :class:`Finding` carries a kind
      and a location, never the value.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from ..core.errors import UsageError

__all__ = ["MARKER", "Finding", "Redactor", "default_redactor", "marker"]

MARKER = "[REDACTED"

#: key words that mark a dict value as secret (also :data:`formats.record.DEFAULT_SECRET_KEYS`)
SECRET_KEYS: tuple[str, ...] = (
    *("password", "passwd", "secret", "token", "api_key", "apikey", "authorization"),
    *("auth", "cookie", "session", "private_key", "credential"),
)

_BENIGN_WORDS = re.compile(r"tokens|author(?!i[sz]ation)")
_MARKER_RX = re.compile(r"\[REDACTED(?::[a-z0-9_]+)?\]")


def marker(kind: str | None = None) -> str:
    """The text that replaces a secret: ``[REDACTED:kind]`` (``[REDACTED]`` without a kind)."""
    return f"[REDACTED:{kind}]" if kind else "[REDACTED]"


# (kind, pattern, group): the secret is the named group "s" when present, else the match
_SHAPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("private_key", re.compile(
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)",
        re.DOTALL)),
    ("bearer", re.compile(
        r"\b[Bb]earer\s+(?P<s>(?=[\w\-.~+/]*[\d\-.~+/_])[A-Za-z0-9\-._~+/]{8,}=*)")),
    ("basic_auth", re.compile(r"\b[Bb]asic\s+(?P<s>[A-Za-z0-9+/]{8,}={0,2})")),
    ("api_key", re.compile(r"(?<![A-Za-z0-9])sk-(?:ant-|proj-)?[A-Za-z0-9_\-]{20,}")),
    ("aws_key", re.compile(r"\b(?:AKIA|ASIA|AROA|AIDA)[0-9A-Z]{16}\b")),
    ("github_token", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})")),
    ("jwt", re.compile(r"\beyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")),
    ("google_api_key", re.compile(r"\bAIza[0-9A-Za-z_\-]{35}")),
    ("slack_token", re.compile(r"\bxox[abposr]-[A-Za-z0-9\-]{10,}")),
    ("url_credentials", re.compile(r"(?<=://)[^\s:/@]{1,64}:(?P<s>[^\s@/]{1,128})(?=@)")),
)

# free text: a secret word, then "is" / ":" / "=" (and a few fillers), then the value
_WORDS = (r"pass(?:word|wd|phrase|code)|pin(?:\s*code)?|api[\s_\-]?key|secret(?:[\s_\-]?key)?"
          r"|access[\s_\-]?(?:key|token)|auth[\s_\-]?token|private[\s_\-]?key|client[\s_\-]?secret"
          r"|session[\s_\-]?(?:id|token)|(?:bearer\s+)?token|credentials?|cvv|security\s+code")
_FREE = re.compile(
    rf"(?i)\b(?:{_WORDS})\b(?:\s+(?:for|of|to)\s+[\w.\-@]+)?"
    r"(?:\s*(?:[:=]|\bis\b|\bwas\b|\bare\b)\s*|\s+(?=\S*\d))"
    r"(?:(?:just|simply|now|still)\s+)?"
    r"(?P<s>\"[^\"\n]{1,256}\"|'[^'\n]{1,256}'|[^\s,;\"'<>(){}\[\]]{1,256})")
_STOP_VALUES = frozenset({"a", "an", "the", "not", "none", "null", "required", "missing",
                          "invalid", "expired", "wrong", "correct", "set", "empty", "needed",
                          "incorrect", "valid", "reset", "changed", "unknown", "true", "false"})

_TOKEN = re.compile(r"[A-Za-z0-9+/=_\-.~]{16,}")
_B64_PART = re.compile(r"[A-Za-z0-9+/=_\-]{20,}")
_HEX_PART = re.compile(r"\b[0-9a-fA-F]{20,}\b")


@dataclass(frozen=True)
class Finding:
    """One redacted secret: its ``kind`` and where (``path``: a JSON-Pointer-like
    location inside the redacted value, e.g. ``/steps/2/args/password``)."""

    kind: str
    path: str


@dataclass
class _Scan:
    findings: list[Finding] = field(default_factory=list)


@lru_cache(maxsize=1)
def _plugins() -> tuple[tuple[Any, ...], Any, Any]:
    """The detect-secrets plugins (regex detectors, base64 and hex entropy)."""
    try:
        from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
        from detect_secrets.plugins.high_entropy_strings import (
            Base64HighEntropyString,
            HexHighEntropyString,
        )
    except ImportError:  # pragma: no cover - a core dependency
        return (), None, None
    skip = {"KeywordDetector", "IPPublicDetector", "Base64HighEntropyString",
            "HexHighEntropyString", "BasicAuthDetector"}
    classes: list[Any] = list(get_mapping_from_secret_type_to_class().values())
    regex = tuple(cls() for cls in sorted(classes, key=lambda c: c.__name__)
                  if cls.__name__ not in skip)
    return regex, Base64HighEntropyString(limit=4.5), HexHighEntropyString(limit=3.0)


def _snake(name: str) -> str:
    name = re.sub(r"Detector$", "", name)
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _token_kind(token: str) -> str | None:
    """The kind of secret a long token is, by detect-secrets, or ``None``."""
    if _MARKER_RX.search(token):
        return None
    regex, b64, hexa = _plugins()
    for plugin in regex:
        try:
            if any(True for _ in plugin.analyze_string(token)):
                return _snake(type(plugin).__name__)
        except Exception:  # noqa: BLE001 - a plugin bug must not stop ingestion
            continue
    if b64 is not None:
        for part in _B64_PART.findall(token):
            if (re.search(r"\d", part) and re.search(r"[a-z]", part) and re.search(r"[A-Z]", part)
                    and b64.calculate_shannon_entropy(part) >= 4.5):
                return "high_entropy"
        for part in _HEX_PART.findall(token):
            if (re.search(r"[a-fA-F]", part) and re.search(r"\d", part)
                    and hexa.calculate_shannon_entropy(part) >= 3.0):
                return "high_entropy"
    return None


def _has_reference(value: Any) -> bool:
    """Whether an args template holds a reference (``$param``, ``$step``, ``$ask``...)."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            if any(isinstance(k, str) and k.startswith("$") for k in v):
                return True
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False


def _is_secret_key(key: str, words: tuple[str, ...]) -> bool:
    low = key.lower()
    benign = [m.span() for m in _BENIGN_WORDS.finditer(low)]
    for word in words:
        w = word.lower()
        start = low.find(w)
        while start != -1:
            end = start + len(w)
            if not any(a <= start and end <= b and b - a > len(w) for a, b in benign):
                return True
            start = low.find(w, start + 1)
    return False


def _sub(rx: Any, kind: str, text: str, found: list[str]) -> str:
    """Replace each match of ``rx`` (its group ``s`` when present) by a marker."""
    def repl(m: Any) -> str:
        groups = m.groupdict() if hasattr(m, "groupdict") else {}
        whole = m.group(0)
        if "s" in groups and groups["s"] is not None:
            value = groups["s"]
            if _MARKER_RX.fullmatch(value.strip("\"'")):
                return str(whole)
            a, b = m.span("s")
            base = m.start()
            found.append(kind)
            return str(whole[: a - base] + marker(kind) + whole[b - base:])
        if _MARKER_RX.fullmatch(whole):
            return str(whole)
        found.append(kind)
        return marker(kind)
    return str(rx.sub(repl, text))


class Redactor:
    """Find and replace secrets in traces, procedures and any JSON-like value.

    Args:
        keys: Key words that mark a dict value as secret (case-insensitive substring).
        patterns: User patterns, ``{kind: regex}``; each regex must compile on RE2
            (linear time) and each match is replaced by ``[REDACTED:kind]``.
        detectors: Use the ``detect-secrets`` plugins and entropy measures
            (on by default; off only for tests that need exact control).

    Raises:
        UsageError: A user pattern or kind is invalid.
    """

    def __init__(self, *, keys: tuple[str, ...] = SECRET_KEYS,
                 patterns: Mapping[str, str] | None = None, detectors: bool = True) -> None:
        from .safe_regex import compile_user

        self.keys = tuple(k.lower() for k in keys)
        self.detectors = detectors
        self.patterns: dict[str, Any] = {}
        self.pattern_sources: dict[str, str] = dict(patterns or {})
        for kind, rx in (patterns or {}).items():
            if not re.fullmatch(r"[a-z0-9_]{1,40}", kind):
                raise UsageError(f"redaction pattern name {kind!r} must be 1-40 of a-z, 0-9, _")
            self.patterns[kind] = compile_user(rx, what=f"redaction pattern {kind!r}")
        self._text = lru_cache(maxsize=65536)(self._text_uncached)

    # ------------------------------------------------------------------ text

    def _text_uncached(self, text: str) -> tuple[str, tuple[str, ...]]:
        found: list[str] = []
        out = text
        for kind, rx in _SHAPES:
            out = _sub(rx, kind, out, found)
        for kind, rx2 in self.patterns.items():
            out = _sub(rx2, kind, out, found)
        out = self._free_text(out, found)
        if self.detectors and len(out) >= 16:
            out = _TOKEN.sub(lambda m: self._token(m.group(0), found), out)
        stripped = out.lstrip()
        if stripped[:1] in ("{", "[") and len(out) < 5_000_000:
            try:
                parsed = json.loads(out)
            except (ValueError, RecursionError):
                return out, tuple(found)
            scan = _Scan()
            cleaned = self._value(parsed, "", scan)
            if scan.findings:
                found.extend(f.kind for f in scan.findings)
                return json.dumps(cleaned, ensure_ascii=False), tuple(found)
        return out, tuple(found)

    def _token(self, token: str, found: list[str]) -> str:
        kind = _token_kind(token)
        if kind is None:
            return token
        found.append(kind)
        return marker(kind)

    @staticmethod
    def _free_text(text: str, found: list[str]) -> str:
        def repl(m: re.Match[str]) -> str:
            value = m.group("s")
            bare = value.strip("\"'").rstrip(".!?")
            if (not bare or bare.lower() in _STOP_VALUES or _MARKER_RX.search(bare)
                    or (bare.isalpha() and bare.islower() and len(bare) < 6
                        and not m.group(0).rstrip().endswith((":", "=")))):
                return m.group(0)
            tail = value[len(value.rstrip(".!?")):] if not value.startswith(("\"", "'")) else ""
            found.append("password" if "pass" in m.group(0).lower() else "secret")
            return m.group(0)[: m.start("s") - m.start()] + marker(found[-1]) + tail
        return _FREE.sub(repl, text)

    def text(self, text: str) -> str:
        """``text`` with every secret replaced by its marker."""
        return self._text(text)[0]

    # ----------------------------------------------------------------- values

    def _value(self, value: Any, path: str, scan: _Scan) -> Any:
        if isinstance(value, str):
            out, kinds = self._text(value)
            scan.findings.extend(Finding(k, path or "/") for k in kinds)
            return out
        if isinstance(value, Mapping):
            res: dict[Any, Any] = {}
            for k, v in value.items():
                sub = f"{path}/{k}"
                if (_is_secret_key(str(k), self.keys) and v not in (None, "", [], {})
                        and not isinstance(v, bool)
                        and not (isinstance(v, str) and _MARKER_RX.fullmatch(v))):
                    if _has_reference(v):  # a procedure's template: redact inside, keep refs
                        res[k] = self._value(v, sub, scan)
                        continue
                    scan.findings.append(Finding("keyed", sub))
                    res[k] = marker("keyed")
                else:
                    res[k] = self._value(v, sub, scan)
            return res
        if isinstance(value, list):
            return [self._value(v, f"{path}/{i}", scan) for i, v in enumerate(value)]
        if isinstance(value, tuple):
            return tuple(self._value(v, f"{path}/{i}", scan) for i, v in enumerate(value))
        try:
            return copy.deepcopy(value)
        except Exception:  # noqa: BLE001 - an uncopyable object is left as it is
            return value

    def value(self, value: Any, path: str = "") -> tuple[Any, list[Finding]]:
        """A redacted deep copy of ``value`` and what was found (kinds and paths)."""
        scan = _Scan()
        return self._value(value, path, scan), scan.findings

    def redact(self, value: Any) -> Any:
        """A redacted deep copy of ``value``."""
        return self.value(value)[0]

    # ---------------------------------------------------------------- records

    def trace(self, trace: Any) -> tuple[Any, list[Finding]]:
        """A trace with task, steps (args, output, error) and metadata redacted.

        Returns:
            ``(trace, findings)``; the same object when nothing was found.
        """
        data = trace.model_dump(mode="python", by_alias=True)
        fields = {k: data[k] for k in ("task", "steps", "metadata") if k in data}
        cleaned, findings = self.value(fields)
        if not findings:
            return trace, []
        return type(trace).model_validate({**data, **cleaned}), findings

    def model(self, record: Any, fields: tuple[str, ...]) -> tuple[Any, list[Finding]]:
        """Any pydantic record with ``fields`` redacted (procedures, executions)."""
        data = record.model_dump(mode="python", by_alias=True)
        sub = {k: data[k] for k in fields if k in data}
        cleaned, findings = self.value(sub)
        if not findings:
            return record, []
        return type(record).model_validate({**data, **cleaned}), findings


_DEFAULT: list[Redactor] = []


def default_redactor() -> Redactor:
    """The shared redactor with the default rules (built once)."""
    if not _DEFAULT:
        _DEFAULT.append(Redactor())
    return _DEFAULT[0]


Redact = Callable[[Any], Any]
