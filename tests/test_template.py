"""Tests for args templates: JSON Pointer, references, validation, binding (core.template)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from procmem.core.errors import InvalidTemplate
from procmem.core.template import (
    ask,
    bind,
    escape_pointer,
    is_ref,
    join_pointer,
    literal,
    param,
    parse_output,
    references,
    resolve_pointer,
    step_ref,
    validate,
)

# ------------------------------------------------------------------- JSON Pointer

# The example document of RFC 6901 §5.
RFC_DOC: dict[str, Any] = {
    "foo": ["bar", "baz"],
    "": 0,
    "a/b": 1,
    "c%d": 2,
    "e^f": 3,
    "g|h": 4,
    "i\\j": 5,
    'k"l': 6,
    " ": 7,
    "m~n": 8,
}


@pytest.mark.parametrize(
    ("pointer", "expected"),
    [
        ("", RFC_DOC),
        ("/foo", ["bar", "baz"]),
        ("/foo/0", "bar"),
        ("/foo/1", "baz"),
        ("/", 0),
        ("/a~1b", 1),
        ("/c%d", 2),
        ("/e^f", 3),
        ("/g|h", 4),
        ("/i\\j", 5),
        ('/k"l', 6),
        ("/ ", 7),
        ("/m~0n", 8),
    ],
)
def test_resolve_pointer_follows_rfc6901_examples(pointer: str, expected: Any) -> None:
    assert resolve_pointer(RFC_DOC, pointer) == expected


def test_resolve_pointer_unescapes_tilde_one_before_tilde_zero() -> None:
    # "~01" must decode to "~1" (RFC 6901 §4), not to "/"
    doc = {"~1": "tilde-one", "/": "slash"}
    assert resolve_pointer(doc, "/~01") == "tilde-one"
    assert resolve_pointer(doc, "/~1") == "slash"


def test_resolve_pointer_parses_json_text_on_the_way_down() -> None:
    doc = '{"orders": ["#W1", "#W2"], "inner": "{\\"k\\": [10, 20]}"}'
    assert resolve_pointer(doc, "/orders/1") == "#W2"
    assert resolve_pointer(doc, "/inner/k/0") == 10


@pytest.mark.parametrize(
    "pointer",
    ["/missing", "/foo/2", "/foo/-", "/foo/01", "/foo/x", "/foo/0/deeper", "/ /x"],
)
def test_resolve_pointer_raises_key_error_when_it_does_not_resolve(pointer: str) -> None:
    with pytest.raises(KeyError):
        resolve_pointer(RFC_DOC, pointer)


def test_resolve_pointer_rejects_a_pointer_without_leading_slash() -> None:
    with pytest.raises(InvalidTemplate, match="start with '/'"):
        resolve_pointer(RFC_DOC, "foo")


def test_escape_and_join_pointer_round_trip_through_resolve() -> None:
    key = "a/b~c"
    assert escape_pointer(key) == "a~1b~0c"
    ptr = join_pointer(join_pointer("", key), 0)
    assert ptr == "/a~1b~0c/0"
    assert resolve_pointer({key: ["v"]}, ptr) == "v"


# ------------------------------------------------------------------- parse_output


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ("  [1, 2] ", [1, 2]),
        ('"quoted"', "quoted"),
        ("true", True),
        ("null", None),
        (b'{"b": 2}', {"b": 2}),
        ("plain text", "plain text"),
        ("{not json", "{not json"),
        ("12", "12"),  # a bare number stays text: ids such as "0012" must survive
        ({"already": "data"}, {"already": "data"}),
        (None, None),
    ],
)
def test_parse_output(output: Any, expected: Any) -> None:
    assert parse_output(output) == expected


# ------------------------------------------------------------------- references


def test_builders_make_reference_nodes() -> None:
    assert param("x") == {"$param": "x"}
    assert step_ref("s1", "/a") == {"$step": "s1", "path": "/a"}
    assert ask("which") == {"$ask": "which"}
    assert ask("which", step_ref("s1", "/l")) == {"$ask": "which",
                                                 "from": {"$step": "s1", "path": "/l"}}
    assert literal({"$weird": 1}) == {"$literal": {"$weird": 1}}
    assert literal({"plain": [1]}) == {"plain": [1]}
    assert is_ref(param("x")) and not is_ref({"param": "x"}) and not is_ref("$param")


def test_references_yields_every_node_with_its_pointer_in_document_order() -> None:
    t = {
        "order_id": param("order_id"),
        "items": [step_ref("s1", "/items/0"), "literal", {"x/y": ask("pick one")}],
        "escaped": {"$literal": {"$param": "not a ref"}},
        "plain": {"nested": 3},
    }
    found = list(references(t))
    assert [p for p, _ in found] == ["/order_id", "/items/0", "/items/2/x~1y", "/escaped"]
    assert found[0][1] == {"$param": "order_id"}
    # a $literal node is reported but never descended into
    assert all("$param" not in n or p == "/order_id" for p, n in found)


def test_references_of_a_template_without_refs_is_empty() -> None:
    assert list(references({"a": [1, {"b": "c"}], "d": None})) == []


# ------------------------------------------------------------------- validate


def test_validate_accepts_good_references() -> None:
    t = {"a": param("p"), "b": step_ref("s1", "/x/0"), "c": ask("q", step_ref("s1", "/l")),
         "d": {"$literal": {"$x": 1}}, "e": step_ref("s1")}
    validate(t, params={"p"}, earlier_steps={"s1"}, step_id="s2")


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ({"a": param("nope")}, "unknown param 'nope'"),
        ({"a": {"$param": 3}}, "unknown param"),
        ({"a": step_ref("s3", "/x")}, "not an earlier step"),
        ({"a": step_ref("s2", "/x")}, "not an earlier step"),  # the step itself
        ({"a": step_ref("s1", "x")}, "bad JSON Pointer"),
        ({"a": {"$step": "s1", "path": 5}}, "bad JSON Pointer"),
        ({"a": {"$param": "p", "default": 1}}, "unknown key"),
        ({"a": {"$param": "p", "$step": "s1"}}, "ambiguous"),
        ({"a": {"$ask": 7}}, "prompt must be a string"),
        ({"a": {"$ask": "q", "from": "s1"}}, "'from' must be a \\$step"),
        ({"a": {"$ask": "q", "from": step_ref("s9", "/l")}}, "not an earlier step"),
    ],
)
def test_validate_rejects_references_that_cannot_bind(template: Any, message: str) -> None:
    with pytest.raises(InvalidTemplate, match=message) as info:
        validate(template, params={"p"}, earlier_steps={"s1"}, step_id="s2")
    assert info.value.step_id == "s2"
    assert info.value.path.startswith("/a")


def test_validate_does_not_look_inside_literal_escapes() -> None:
    validate({"x": {"$literal": {"$param": "unknown"}}}, params=set(), earlier_steps=set())


# ------------------------------------------------------------------- bind


def test_bind_replaces_references_and_reports_provenance() -> None:
    t = {"id": param("order_id"), "items": [step_ref("s1", "/items/0"), "keep"],
         "choice": ask("which"), "raw": {"$literal": {"$param": "x"}}}
    values = {"$param": "#W1", "$step": "item-9", "$ask": "picked"}

    def resolve(pointer: str, node: dict[str, Any]) -> tuple[Any, str]:
        kind = next(k for k in ("$param", "$step", "$ask") if k in node)
        return values[kind], f"{kind[1:]}@{pointer}"

    bound, sources = bind(t, resolve)
    assert bound == {"id": "#W1", "items": ["item-9", "keep"], "choice": "picked",
                     "raw": {"$param": "x"}}
    assert sources == {"/id": "param@/id", "/items/0": "step@/items/0",
                       "/choice": "ask@/choice"}


def test_bind_uses_base_for_pointers_and_propagates_resolver_errors() -> None:
    _, sources = bind({"a": param("p")}, lambda p, n: (1, "given"), base="/args")
    assert sources == {"/args/a": "given"}

    def boom(pointer: str, node: dict[str, Any]) -> tuple[Any, str]:
        raise LookupError(pointer)

    with pytest.raises(LookupError, match="/a"):
        bind({"a": param("p")}, boom)


# ------------------------------------------------------------------- hypothesis

_keys = st.text(alphabet="ab/~$ x", min_size=1, max_size=4).filter(lambda k: not k.startswith("$"))
_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
_refs = st.one_of(
    st.sampled_from(["p", "q"]).map(param),
    st.builds(step_ref, st.just("s1"), st.sampled_from(["", "/a", "/a/0"])),
    st.builds(ask, st.text(max_size=5)),
    st.builds(ask, st.text(max_size=5), st.just(step_ref("s1", "/l"))),
)
_templates = st.recursive(
    _scalars | _refs,
    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(_keys, kids, max_size=4),
    max_leaves=20,
)
# values a reference may bind to: anything JSON, including objects that look like references
_values = st.recursive(
    _scalars,
    lambda kids: st.lists(kids, max_size=3)
    | st.dictionaries(st.sampled_from(["$param", "$step", "k"]), kids, max_size=2),
    max_leaves=6,
)


def _ref_nodes(value: Any, seen_values: list[Any]) -> int:
    """How many reference nodes ``value`` holds, not counting the bound values themselves."""
    if any(value is v for v in seen_values):
        return 0
    if is_ref(value):
        return 1
    if isinstance(value, dict):
        return sum(_ref_nodes(v, seen_values) for v in value.values())
    if isinstance(value, list):
        return sum(_ref_nodes(v, seen_values) for v in value)
    return 0


@settings(max_examples=150, deadline=None)
@given(template=st.dictionaries(_keys, _templates, max_size=5), value=_values)
def test_binding_a_template_whose_refs_resolve_leaves_no_reference(
    template: dict[str, Any], value: Any
) -> None:
    validate(template, params={"p", "q"}, earlier_steps={"s1"})
    handed_out: list[Any] = []

    def resolve(pointer: str, node: dict[str, Any]) -> tuple[Any, str]:
        assert is_ref(node)
        handed_out.append(value)
        return value, "test"

    bound, sources = bind(template, resolve)
    # no reference node anywhere except inside values the resolver handed out
    assert _ref_nodes(bound, handed_out) == 0
    # exactly one provenance entry per non-literal reference in the template
    refs = [p for p, n in references(template) if "$literal" not in n]
    assert sorted(sources) == sorted(refs)
    for pointer in sources:
        assert resolve_pointer(bound, pointer) == value
