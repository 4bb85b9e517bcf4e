"""What the gateway relies on in its libraries beyond their APIs, pinned so an upgrade that
changes it fails here (and pyproject's upper bounds are raised only after this passes).

- msgspec, the config reader (``gateway/config/reader.py``): it does not read msgspec's error
  messages; it walks the YAML data against ``msgspec.inspect.type_info`` of the config types.
  Pinned: that introspection API and what it says of our types; that the walk accepts exactly
  what ``msgspec.convert(strict=True)`` accepts (if msgspec starts accepting or refusing
  something new, the agreement test fails); and the `` - at `$.path` `` suffix, which the
  reader reads only for a refusal the walk did not foresee;
- msgspec, the webhook: its 400 messages quote msgspec's message with that suffix, adding
  `` - at `$` `` where msgspec leaves the root path out;
- Jinja: the wording of an unknown filter or test, which lint reports as GW011;
- JMESPath: the lexer position of a syntax error, which lint turns into a column.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any, Literal

import jinja2
import jmespath
import msgspec
import msgspec.inspect as mi
import pytest

from gateway.config import model, reader, yamlpos
from gateway.tools.mapping_tests.cases import CaseFile

pytestmark = pytest.mark.unit


class Inner(msgspec.Struct, forbid_unknown_fields=True):
    count: int


class Outer(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    inner: Inner


class Groups(msgspec.Struct):
    name: str
    groups: dict[str, Inner]


def _error(data: object, type_: Any = Outer) -> str:
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.convert(data, type_, strict=True)
    return str(info.value)


# --- msgspec's error text: only its ` - at `$.path`` suffix is read -------------------------


def test_msgspec_path_suffix_of_a_nested_value():
    assert _error({"name": "x", "inner": {"count": "1"}}) == "Expected `int`, got `str` - at `$.inner.count`"


def test_msgspec_leaves_the_root_path_out():
    # The webhook adds ` - at `$`` itself; the reader reports such an error at the top.
    assert " - at `" not in _error({"inner": {"count": 1}})
    assert " - at `" not in _error([])


def test_msgspec_path_suffix_does_not_name_dict_keys():
    message = _error({"a": {"count": "x"}}, dict[str, Inner])
    assert message.endswith(" - at `$[...].count`")
    assert yamlpos.parse_msgspec_path("$[...].count") == (yamlpos.ANY_KEY, "count")


def test_msgspec_path_suffix_of_a_dict_key():
    message = _error({"bad key": 1}, dict[Annotated[str, msgspec.Meta(pattern="^[a-z]+$")], int])
    assert message.endswith(" - at `key` in `$`")
    message = _error({"d": {1: 1}}, dict[str, dict[str, int]])
    assert message.endswith(" - at `key` in `$[...]`")


def test_msgspec_path_suffix_parses_into_a_key_path():
    message = _error({"name": "x", "inner": {"count": 1, "cuont": 2}})
    _, _, where = message.rpartition(" - at `")
    assert yamlpos.parse_msgspec_path(where.rstrip("`")) == ("inner",)
    assert yamlpos.parse_msgspec_path("$.operations[...].steps[0].if") == ("operations", yamlpos.ANY_KEY, "steps", 0, "if")


def test_an_unforeseen_refusal_is_reported_verbatim_where_its_path_says(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text("name: x\ngroups:\n  b:\n    count: x\n")
    diagnostics: list = []
    ctx = reader.read(path, diagnostics)
    with pytest.raises(msgspec.ValidationError) as info:
        msgspec.convert(ctx.located.data, Groups, strict=True)
    reader._report_unforeseen(ctx, info.value)  # `$.groups[...].count`: at the dict, not the key it hides
    [d] = diagnostics
    assert (d.line, d.col, d.code, d.message, d.keypath) == (3, 3, "GW004", "Expected `int`, got `str`", "groups")


# --- msgspec.inspect: the declared types, as the reader walks them --------------------------


class Tagged(msgspec.Struct, tag="one", tag_field="kind", forbid_unknown_fields=True):
    x: int


class Other(msgspec.Struct, tag="two", tag_field="kind"):
    y: str = "y"


class Renamed(msgspec.Struct, kw_only=True):
    if_: str | None = msgspec.field(default=None, name="if")
    needed: Annotated[float, msgspec.Meta(gt=0, le=300)]
    names: dict[Annotated[str, msgspec.Meta(pattern="^[a-z]$", description="a letter")], list[int]] = {}
    kind: Literal["a", "b"] = "a"
    either: Tagged | Other | None = None


def test_msgspec_inspect_describes_a_struct():
    info = mi.type_info(Renamed)
    assert type(info) is mi.StructType and info.cls is Renamed
    assert info.forbid_unknown_fields is False and info.tag_field is None
    fields = {f.encode_name: f for f in info.fields}
    assert list(fields) == ["if", "needed", "names", "kind", "either"]
    assert fields["if"].name == "if_" and fields["if"].required is False and fields["if"].default is None
    assert fields["needed"].required is True
    assert fields["if"].type == mi.UnionType(types=(mi.StrType(), mi.NoneType()))
    assert fields["needed"].type == mi.FloatType(gt=0, le=300)
    names = fields["names"].type
    assert type(names) is mi.DictType and names.value_type == mi.ListType(item_type=mi.IntType())
    assert names.key_type == mi.Metadata(type=mi.StrType(pattern="^[a-z]$"), extra_json_schema={"description": "a letter"})
    assert fields["kind"].type == mi.LiteralType(values=("a", "b"))
    either = fields["either"].type
    assert [type(t) for t in either.types] == [mi.StructType, mi.StructType, mi.NoneType]
    assert [(t.tag_field, t.tag, t.forbid_unknown_fields) for t in either.types[:2]] == [("kind", "one", True), ("kind", "two", False)]
    assert mi.type_info(Any) == mi.AnyType() and mi.type_info(bool) == mi.BoolType()
    assert mi.type_info(Annotated[int, msgspec.Meta(ge=1, le=10)]) == mi.IntType(ge=1, le=10)
    assert mi.type_info(Annotated[str, msgspec.Meta(min_length=1)]) == mi.StrType(min_length=1)


def _kinds(t: mi.Type, seen: set[type]) -> set[type]:
    found = {type(t)}
    if type(t) is mi.Metadata:
        found |= _kinds(t.type, seen)
    elif type(t) is mi.StructType:
        if t.cls not in seen:
            seen.add(t.cls)
            for f in t.fields:
                found |= _kinds(f.type, seen)
    elif type(t) is mi.UnionType:
        for m in t.types:
            found |= _kinds(m, seen)
    elif type(t) is mi.ListType:
        found |= _kinds(t.item_type, seen)
    elif type(t) is mi.DictType:
        found |= _kinds(t.key_type, seen) | _kinds(t.value_type, seen)
    return found


@pytest.mark.parametrize("root", [model.MappingFile, model.GatewayFile, CaseFile])
def test_the_config_types_use_only_kinds_the_reader_walks(root):
    # Another kind (a datetime, an Enum, a tuple...) would be left to msgspec: still refused,
    # but with msgspec's words and without the other problems of the file.
    assert _kinds(mi.type_info(root), set()) <= set(reader._Check._BY_TYPE) | {mi.Metadata}


# --- the walk accepts what msgspec accepts: the rules it reimplements -----------------------

VALUES: list[Any] = [
    None, True, False, 0, 1, -1, 7, 300, 301, 2**70, 0.0, 0.5, 1.0, 300.0, math.nan, math.inf,
    "", "a", "ab", "A", "1", "b", "one", "two", "none", [], [1], [1, "a"], ["x"], {}, {"a": 1}, {"a": [1]},
    {"b": [1, 2]}, {"A": [1]}, {1: [1]}, {"kind": "one", "x": 1}, {"kind": "one"}, {"kind": "one", "x": 1, "z": 2},
    {"kind": "two"}, {"kind": "two", "z": 1}, {"kind": "three"}, {"kind": 1}, {"x": 1},
    {"needed": 1}, {"needed": 0}, {"needed": 1, "if": "x"}, {"needed": 1, "if_": "x"}, {"needed": 1, "if": 1},
    {"needed": 1.5, "names": {"a": [1]}}, {"needed": 1, "names": {"ab": [1]}}, {"needed": 1, "kind": "c"},
    {"needed": 1, "either": {"kind": "two"}}, {"needed": 1, "either": {"kind": "one"}}, {"needed": 1, "either": "one"},
    {"needed": 1, 2: 3}, {"needed": True},
]
TYPES: list[Any] = [
    Any, None, bool, int, float, str, Literal["a", "b"], Literal[1, 2], list[int], list[str | int],
    dict[str, list[int]], Annotated[int, msgspec.Meta(ge=0, le=300)], Annotated[int, msgspec.Meta(gt=0, lt=300)],
    Annotated[float, msgspec.Meta(gt=0, le=300)], Annotated[float, msgspec.Meta(ge=0)],
    Annotated[str, msgspec.Meta(pattern="b")], Annotated[str, msgspec.Meta(pattern="^[a-z]$")],
    Annotated[str, msgspec.Meta(min_length=1, max_length=1)], Annotated[list[int], msgspec.Meta(min_length=1)],
    int | None, float | None, str | bool | None, int | str | list[int | str] | None, Literal["none"] | Tagged,
    Tagged | Other, Tagged, Other, Renamed, Renamed | Literal["one"] | None,
    dict[Annotated[str, msgspec.Meta(pattern="^[a-z]$")], list[int]], int | float, float | str,
]


def _walk_accepts(value: Any, type_: Any) -> bool:
    diagnostics: list = []
    ctx = reader.FileContext(Path("f.yaml"), yamlpos.Located("f.yaml", value), diagnostics)
    result = reader._Check(ctx).value(value, mi.type_info(type_), ())
    assert diagnostics or result is value  # clean data goes through untouched
    return not diagnostics


def _msgspec_accepts(value: Any, type_: Any) -> bool:
    try:
        msgspec.convert(value, type_, strict=True)
    except msgspec.ValidationError:
        return False
    return True


@pytest.mark.parametrize("type_", TYPES, ids=repr)
def test_the_walk_accepts_exactly_what_msgspec_converts(type_):
    differ = [v for v in VALUES if _walk_accepts(v, type_) != _msgspec_accepts(v, type_)]
    assert differ == []


def test_the_walk_leaves_out_exactly_what_it_reports():
    value = {"needed": 1, "names": {"a": [1, "x", 2], "BAD": [1]}, "kind": "c", "either": {"kind": "one"}, "zz": 1}
    diagnostics: list = []
    ctx = reader.FileContext(Path("f.yaml"), yamlpos.Located("f.yaml", value), diagnostics)
    cleaned = reader._Check(ctx).value(value, mi.type_info(Renamed), ())
    # Left out: the item "x", the key BAD, kind c, `either` (no x); kept: zz (Renamed ignores unknown fields).
    assert cleaned == {"needed": 1, "names": {"a": [1, 2]}, "zz": 1}
    assert msgspec.convert(cleaned, Renamed, strict=True) == Renamed(needed=1.0, names={"a": [1, 2]})
    assert [(d.keypath, d.code) for d in diagnostics] == [
        ("names.a[1]", "GW004"), ("names.BAD", "GW004"), ("kind", "GW004"), ("either", "GW005")]
    assert value["names"]["a"] == [1, "x", 2]  # the loaded data is not changed


# --- Jinja, JMESPath --------------------------------------------------------------------------


def test_jinja_unknown_filter_message():
    with pytest.raises(jinja2.TemplateSyntaxError) as info:
        jinja2.Environment().from_string("{{ x | no_such_filter }}")
    assert info.value.message.startswith("No filter named 'no_such_filter'")


def test_jmespath_syntax_error_position():
    with pytest.raises(jmespath.exceptions.ParseError) as info:
        jmespath.compile("a.[")
    assert isinstance(info.value.lex_position, int) and info.value.lex_position == 3


def test_tenacity_stop_sees_the_coming_wait():
    """tenacity: a stop condition sees the wait that would come next (``upcoming_sleep``), which
    keeps a retry from sleeping past the webhook's deadline (runtime/retry.py)."""
    import tenacity

    seen: list[float] = []

    def stop(retry_state: tenacity.RetryCallState) -> bool:
        seen.append(retry_state.upcoming_sleep)
        return True

    retrying = tenacity.Retrying(stop=stop, wait=tenacity.wait_fixed(7), reraise=True)
    with pytest.raises(ValueError):
        for attempt in retrying:
            with attempt:
                raise ValueError("once")
    assert seen == [7]


def test_uvicorn_supervisor_dispatches_sighup_to_handle_hup():
    """gateway/http/reload.py replaces ``Multiprocess.handle_hup`` (restart every worker) with
    passing SIGHUP on to the workers; that works only while the supervisor dispatches so."""
    import inspect
    import signal

    from uvicorn.supervisors.multiprocess import SIGNALS, Multiprocess

    assert SIGNALS[signal.SIGHUP] == "HUP" and callable(Multiprocess.handle_hup)
    assert 'getattr(self, f"handle_{sig_name.lower()}"' in inspect.getsource(Multiprocess.handle_signals)


# --- PyYAML: yamlpos builds values from composed nodes ---------------------------------------------

_EVERY_SCALAR = """\
plain: text
quoted: "{{ request.amount.value }}"
single: 'it''s'
block: |
  line one
  line two
folded: >
  a
  b
numbers: [1, -2, 0x1f, 1.5, .inf, 1e3, 0o17]
truth: [true, False, yes, no, on]
nothing: [null, ~, ]
date: 2026-11-26
stamp: 2026-11-26T13:00:00Z
tagged: !!str 123
binary: !!binary aGVsbG8=
anchor: &a {x: 1, y: [2, "3"]}
alias: *a
3: int key
1.5: float key
null: null key
true: bool key
"""


def test_yamlpos_values_are_what_safe_load_gives():
    """yamlpos takes a plain string node's value as it is and leaves every other tag to PyYAML's
    constructor: the result must equal ``yaml.safe_load`` for every kind of scalar."""
    import yaml

    located, problems = yamlpos.load("f.yaml", _EVERY_SCALAR)
    assert problems == [] and located is not None
    assert located.data == yaml.safe_load(_EVERY_SCALAR)
    assert located.marks[("numbers", 2)] == (10, 18)  # `0x1f`


def test_yamlpos_keeps_no_node_once_a_file_is_loaded():
    """Scalars other than strings go through one shared PyYAML constructor, which remembers every
    node it built until told to forget: after a load it must hold none (else every file loaded,
    reloads included, would stay in memory)."""
    yamlpos.load("f.yaml", _EVERY_SCALAR)
    assert yamlpos._constructor.constructed_objects == {}
