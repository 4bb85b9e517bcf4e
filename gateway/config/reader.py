"""Reading one config file into its declared type, with diagnostics at ``file:line:col``."""

from __future__ import annotations

import datetime as dt
import functools
import os
import re
from pathlib import Path
from typing import Any, TypeVar

import msgspec
import msgspec.inspect as mi

from .. import diagnostics as rules
from ..diagnostics import Diagnostic, Rule, Severity, closest, suggest
from . import yamlpos
from .yamlpos import KeyPath, Located

T = TypeVar("T")


def display_path(path: Path) -> str:
    """The path as the user would type it: relative to the working directory when inside it."""
    try:
        return os.path.relpath(path)
    except ValueError:  # pragma: no cover - another drive on Windows
        return str(path)


class FileContext:
    """Collects diagnostics for one file and knows where each key path sits in it."""

    def __init__(self, path: Path, located: Located, diagnostics: list[Diagnostic]) -> None:
        self.path = path
        self.file = located.file
        self.located = located
        self.diagnostics = diagnostics

    def report(self, path: KeyPath, code: Rule, message: str, *, severity: Severity | None = None,
               line_offset: int = 0, at_key: bool = False, col_offset: int | None = None,
               text: str = "") -> None:
        """Report at ``path``; inside a scalar, at its ``line_offset``-th line (templates count
        lines from 1) or at character ``col_offset`` of its ``text`` (JMESPath positions)."""
        line, col = self.located.position(path, key=at_key)
        if line_offset or col_offset is not None:
            line, col = self._inside(tuple(path), line, col, line_offset, col_offset, text)
        self.diagnostics.append(
            Diagnostic(self.file, line, col, code, message, yamlpos.format_path(path), severity)
        )

    def _inside(self, path: KeyPath, line: int, col: int, line_offset: int, col_offset: int | None,
                text: str) -> tuple[int, int]:
        style = self.located.styles.get(path)
        if col_offset is not None:
            before = text[:col_offset]
            line_offset = before.count("\n") + 1
            in_line = col_offset - (before.rfind("\n") + 1)
        else:
            in_line = 0
        lines = self.located.lines
        if style == ">" and col_offset is not None:
            # A folded scalar joined its lines with spaces: walk them to find the character.
            remaining = col_offset
            for target in range(line + 1, len(lines) + 1):
                content = lines[target - 1].strip()
                if remaining <= len(content):
                    indent = len(lines[target - 1]) - len(lines[target - 1].lstrip(" "))
                    return target, indent + 1 + remaining
                remaining -= len(content) + 1
        if style in ("|", ">"):
            # Block scalars start on the line after their indicator, indented. A literal (|)
            # keeps the lines as written; in a folded (>) one, Jinja's line numbers no longer
            # match the file's, so a template error there points at its first line.
            target = line + (line_offset if style == "|" else 1)
            if 1 <= target <= len(lines):
                indent = len(lines[target - 1]) - len(lines[target - 1].lstrip(" "))
                return target, indent + 1 + (in_line if style == "|" else 0)
            return line, col
        if style in ('"', "'") and line_offset <= 1 and 1 <= line <= len(lines):
            # Past the opening quote, counting escapes as written (`''`, `\"`) rather than as read.
            return line, col + 1 + _raw_offset(lines[line - 1][col:], in_line, style)
        return line + max(line_offset, 1) - 1, col + (in_line if line_offset <= 1 else 0)

    @property
    def base_dir(self) -> Path:
        return self.path.parent


def _raw_offset(raw: str, index: int, quote: str) -> int:
    """Where the ``index``-th character of a quoted scalar's value stands in its raw text."""
    position = 0
    for _ in range(index):
        if position >= len(raw):
            break
        if quote == "'" and raw.startswith("''", position):
            position += 2
        elif quote == '"' and raw[position] == "\\":
            escape = raw[position + 1: position + 2]
            position += {"x": 4, "u": 6, "U": 10}.get(escape, 2)
        else:
            position += 1
    return position


def read(path: Path, diagnostics: list[Diagnostic], *, origin: tuple[FileContext, KeyPath] | None = None) -> FileContext | None:
    """Read and parse a YAML file; report unreadable files and syntax errors."""
    file = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        message = f"cannot read `{file}`: {exc.strerror or exc}"
        if origin is not None:
            origin[0].report(origin[1], rules.CONFIG_MISSING_FILE, message)
        else:
            diagnostics.append(Diagnostic(file, 1, 1, rules.CONFIG_MISSING_FILE, message))
        return None
    located, problems = yamlpos.load(file, text)
    for p in problems:
        code = rules.YAML_DUPLICATE_KEY if p.duplicate else rules.YAML_SYNTAX
        if p.duplicate and len(p.path) == 2 and p.path[0] == "providers" and origin is None:
            code = rules.PROVIDER_DUPLICATE
        diagnostics.append(Diagnostic(file, p.line, p.col, code, p.message, yamlpos.format_path(p.path) if p.path else ""))
    if located is None:
        return None
    return FileContext(path, located, diagnostics)


def convert(ctx: FileContext, type_: type[T], *, hint: str = "") -> T | None:
    """``msgspec.convert`` the file's data into ``type_``, reporting every problem it has.

    Valid data converts at once. When msgspec refuses it, :class:`_Check` walks the data
    against the declared types (``msgspec.inspect``), reporting each problem where it is written
    and leaving the offending entry out; what is left converts, and is returned so later checks
    (templates, expressions) still run, while the diagnostics already make the configuration
    fail. Nothing here reads msgspec's error messages, except to pass on one the walk did not
    foresee (see :func:`_report_unforeseen`).
    """
    data = ctx.located.data
    if data is None:
        ctx.report((), rules.CONFIG_MISSING_FIELD, f"the file is empty; {hint or 'it should be a YAML mapping'}")
        return None
    try:
        return msgspec.convert(data, type_, strict=True)
    except msgspec.ValidationError:
        pass
    cleaned = _Check(ctx).value(data, _schema(type_), ())
    if cleaned is _DROP:
        return None
    try:
        return msgspec.convert(cleaned, type_, strict=True)
    except msgspec.ValidationError as exc:
        _report_unforeseen(ctx, exc)
        return None


@functools.cache
def _schema(type_: Any) -> mi.Type:
    return mi.type_info(type_)


class _Drop:
    """Returned for a value that has a problem (already reported): its entry is left out."""


_DROP: Any = _Drop()

# What msgspec calls each kind of value the YAML loader produces.
_KINDS: dict[type, str] = {
    str: "str", int: "int", float: "float", bool: "bool", type(None): "null",
    dict: "object", list: "array", dt.date: "date", dt.datetime: "datetime", bytes: "bytes",
}
# YAML 1.1 surprises: unquoted text that is read as something else.
_UNQUOTED = {
    "bool": " (YAML reads unquoted yes, no, on, off, true and false as booleans: quote it)",
    "date": " (YAML reads an unquoted date as a date: quote it)",
    "datetime": " (YAML reads an unquoted timestamp as a date: quote it)",
}


def _kind(value: Any) -> str:
    return _KINDS.get(type(value)) or type(value).__name__


class _Check:
    """One walk over loaded YAML data against its declared type, reporting every problem."""

    def __init__(self, ctx: FileContext) -> None:
        self.ctx = ctx

    def report(self, path: KeyPath, code: Rule, message: str, *, at_key: bool = False) -> Any:
        self.ctx.report(path, code, message, at_key=at_key)
        return _DROP

    def value(self, value: Any, t: mi.Type, path: KeyPath) -> Any:
        """``value`` if it fits ``t``; a copy without its bad entries; or ``_DROP``."""
        if type(t) is mi.Metadata:
            if type(t.type) is mi.StrType:  # a pattern explained in words
                problem = _scalar_problem(value, t.type, _description(t))
                return value if problem is None else self.report(path, rules.CONFIG_WRONG_TYPE, problem)
            t = t.type
        check = self._BY_TYPE.get(type(t))
        if check is None:  # a kind of type the config does not use: msgspec will judge it
            return value
        return check(self, value, t, path)

    # --- scalars --------------------------------------------------------------------------

    def _scalar(self, value: Any, t: mi.Type, path: KeyPath) -> Any:
        problem = _scalar_problem(value, t)
        if problem is None:
            return value
        return self.report(path, rules.CONFIG_WRONG_TYPE, problem)

    def _any(self, value: Any, t: mi.Type, path: KeyPath) -> Any:
        return value

    # --- containers -----------------------------------------------------------------------

    def _list(self, value: Any, t: mi.ListType, path: KeyPath) -> Any:
        if type(value) is not list:
            return self.report(path, rules.CONFIG_WRONG_TYPE, _wrong_type(value, t))
        out: list[Any] | None = None
        for i, item in enumerate(value):
            new = self.value(item, t.item_type, path + (i,))
            if new is not item and out is None:
                out = value[:i]
            if out is not None and new is not _DROP:
                out.append(new)
        if (problem := _length_problem(value, t, "array")) is not None:
            return self.report(path, rules.CONFIG_WRONG_TYPE, problem)
        return value if out is None else out

    def _dict(self, value: Any, t: mi.DictType, path: KeyPath) -> Any:
        if type(value) is not dict:
            return self.report(path, rules.CONFIG_WRONG_TYPE, _wrong_type(value, t))
        out: dict[Any, Any] | None = None
        key_type, described = t.key_type, None
        if type(key_type) is mi.Metadata:
            key_type, described = key_type.type, _description(key_type)
        for key, item in value.items():
            problem = _scalar_problem(key, key_type, described)
            if problem is not None:
                # A string's problem quotes it: "key 'a b' does not match ..."; "key 1: expected `str`..."
                problem = f"key {problem}" if type(key) is str else f"key {key!r}: {problem}"
                self.report(path + (key,), rules.CONFIG_WRONG_TYPE, problem, at_key=True)
                new = _DROP
            else:
                new = self.value(item, t.value_type, path + (key,))
            if new is not item and out is None:
                out = dict(value)
            if out is not None:
                if new is _DROP:
                    del out[key]
                else:
                    out[key] = new
        if (problem := _length_problem(value, t, "object")) is not None:
            return self.report(path, rules.CONFIG_WRONG_TYPE, problem)
        return value if out is None else out

    def _struct(self, value: Any, t: mi.StructType, path: KeyPath) -> Any:
        if type(value) is not dict:
            return self.report(path, rules.CONFIG_WRONG_TYPE, _wrong_type(value, t))
        fields = _fields(t)
        out: dict[Any, Any] | None = None
        complete = True
        for key, item in value.items():
            if t.tag_field is not None and key == t.tag_field:
                if not _same(item, t.tag):
                    self.report(path + (key,), rules.CONFIG_WRONG_TYPE, _choice_problem(item, (t.tag,), f"`{key}`"))
                    complete = False
                continue
            field = fields.get(key) if type(key) is str else None
            if field is None:
                if not t.forbid_unknown_fields and type(key) is str:
                    continue
                self._unknown(key, list(fields), path)
                new = _DROP
            else:
                new = self.value(item, field.type, path + (key,))
                if new is _DROP and field.required:
                    complete = False  # reported where the value is; the object cannot be built
            if new is not item and out is None:
                out = dict(value)
            if out is not None:
                if new is _DROP:
                    del out[key]
                else:
                    out[key] = new
        missing = [name for name, field in fields.items() if field.required and name not in value]
        if missing:
            names = ", ".join(f"`{name}`" for name in missing[:-1])
            names = f"{names} and `{missing[-1]}`" if names else f"`{missing[0]}`"
            self.report(path, rules.CONFIG_MISSING_FIELD,
                        f"missing required field{'s' if len(missing) > 1 else ''} {names}")
            complete = False
        if not complete:
            return _DROP
        return value if out is None else out

    def _unknown(self, key: Any, allowed: list[str], path: KeyPath) -> None:
        name = str(key)
        text = f"unknown field `{name}`" + (_UNQUOTED["bool"] if type(key) is bool else "")
        text += suggest(name, allowed, f"allowed here: {', '.join(sorted(allowed))}" if allowed else "")
        self.report(path + (key,), rules.CONFIG_UNKNOWN_FIELD, text, at_key=True)

    def _union(self, value: Any, t: mi.UnionType, path: KeyPath) -> Any:
        members = _members_for(t, value)
        if not members:
            return self.report(path, rules.CONFIG_WRONG_TYPE, _wrong_type(value, t))
        if len(members) == 1:
            return self.value(value, members[0], path)
        # Several Structs take an object: a tagged union (an auth kind), chosen by its tag.
        tag_field = members[0].tag_field
        tags = tuple(m.tag for m in members)
        if tag_field not in value:
            return self.report(path, rules.CONFIG_MISSING_FIELD,
                               f"missing required field `{tag_field}` (one of {_listing(tags)})")
        tag = value[tag_field]
        chosen = next((m for m in members if _same(tag, m.tag)), None)
        if chosen is None:
            return self.report(path + (tag_field,), rules.CONFIG_WRONG_TYPE,
                               _choice_problem(tag, tags, f"`{tag_field}`"))
        return self.value(value, chosen, path)

    _BY_TYPE: dict[type, Any] = {
        mi.AnyType: _any,
        mi.NoneType: _scalar, mi.BoolType: _scalar, mi.IntType: _scalar, mi.FloatType: _scalar,
        mi.StrType: _scalar, mi.LiteralType: _scalar,
        mi.ListType: _list, mi.DictType: _dict, mi.StructType: _struct, mi.UnionType: _union,
    }


@functools.cache
def _fields_by_type(cls: type) -> dict[str, mi.Field]:
    return {f.encode_name: f for f in _schema(cls).fields}


def _fields(t: mi.StructType) -> dict[str, mi.Field]:
    return _fields_by_type(t.cls)


def _same(value: Any, expected: Any) -> bool:
    """``value == expected`` without Python's ``True == 1``."""
    return type(value) is type(expected) and value == expected


def _members_for(t: mi.UnionType, value: Any) -> list[mi.Type]:
    """The members of a union that can take ``value``'s kind, as msgspec picks them: an int goes
    to ``int`` or else ``float``; an object to the Struct(s) or a dict; a string to ``str`` or a
    literal."""
    members = [m.type if type(m) is mi.Metadata else m for m in t.types]
    kind = type(value)
    if kind is int:
        for wanted in (mi.IntType, mi.FloatType):
            found = [m for m in members if type(m) is wanted]
            if found:
                return found
        return [m for m in members if type(m) is mi.LiteralType and any(_same(value, v) for v in m.values)]
    if kind is dict:
        return [m for m in members if type(m) in (mi.StructType, mi.DictType)]
    if kind is list:
        return [m for m in members if type(m) is mi.ListType]
    if kind is str:
        found = [m for m in members if type(m) is mi.StrType]
        return found or [m for m in members if type(m) is mi.LiteralType and type(m.values[0]) is str]
    if kind is float:
        return [m for m in members if type(m) is mi.FloatType]
    if kind is bool:
        return [m for m in members if type(m) is mi.BoolType]
    if value is None:
        return [m for m in members if type(m) is mi.NoneType]
    return []


def _type_name(t: mi.Type) -> str:
    if type(t) is mi.Metadata:
        t = t.type
    if type(t) is mi.UnionType:
        names = [_type_name(m) for m in t.types]
        return " | ".join(dict.fromkeys(names))
    if type(t) is mi.LiteralType:
        return _KINDS.get(type(t.values[0]), "value")
    return _TYPE_NAMES.get(type(t), "value")


_TYPE_NAMES: dict[type, str] = {
    mi.AnyType: "any", mi.NoneType: "null", mi.BoolType: "bool", mi.IntType: "int",
    mi.FloatType: "float", mi.StrType: "str", mi.ListType: "array", mi.DictType: "object",
    mi.StructType: "object",
}


def _wrong_type(value: Any, t: mi.Type) -> str:
    expected = _type_name(t)
    got = _kind(value)
    message = f"expected `{expected}`, got `{got}`"
    if "str" in expected.split(" | ") and got in _UNQUOTED:
        message += _UNQUOTED[got]
    return message


def _listing(values: tuple[Any, ...]) -> str:
    return ", ".join(repr(v) for v in values)


def _choice_problem(value: Any, allowed: tuple[Any, ...], what: str = "value") -> str:
    message = f"invalid {what} {value!r}"
    # Closer than for field names: among a few short words, 'FETCH' is not a typo of 'PATCH'.
    suggestion = closest(value, allowed, cutoff=0.75)
    if suggestion is not None:
        return f"{message}; did you mean {suggestion!r}?"
    return f"{message}; allowed: {_listing(allowed)}"


def _description(t: mi.Metadata) -> str | None:
    return (t.extra_json_schema or {}).get("description")


def _scalar_problem(value: Any, t: mi.Type, described: str | None = None) -> str | None:
    """Why ``value`` does not fit the scalar type ``t``, or None (msgspec's strict rules).

    ``described``: what a string's pattern means, in words (the type's ``Meta(description=)``).
    """
    kind = type(t)
    if kind is mi.StrType:
        if type(value) is not str:
            return _wrong_type(value, t)
        if t.pattern is not None and not _pattern(t.pattern).search(value):
            if described:
                return f"{value!r} is not {described}"
            return f"{value!r} does not match regex '{t.pattern}'"
        return _length_problem(value, t, "str")
    if kind is mi.IntType:
        if type(value) is not int:
            return _wrong_type(value, t)
        return _bounds_problem(value, t, "int")
    if kind is mi.FloatType:
        if type(value) is not float and type(value) is not int:
            return _wrong_type(value, t)
        return _bounds_problem(value, t, "float")
    if kind is mi.LiteralType:
        if any(_same(value, v) for v in t.values):
            return None
        if type(value) not in (str, int, float, bool, type(None)):
            return _wrong_type(value, t)
        return _choice_problem(value, t.values)
    if kind is mi.BoolType:
        return None if type(value) is bool else _wrong_type(value, t)
    if kind is mi.NoneType:
        return None if value is None else _wrong_type(value, t)
    if kind is mi.AnyType:
        return None
    return _wrong_type(value, t)


@functools.cache
def _pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _bounds_problem(value: float, t: mi.IntType | mi.FloatType, name: str) -> str | None:
    # Written as "not (value > bound)" so NaN fails every bound, as it does in msgspec.
    for op, bound, holds in (
        (">", t.gt, lambda b: value > b), (">=", t.ge, lambda b: value >= b),
        ("<", t.lt, lambda b: value < b), ("<=", t.le, lambda b: value <= b),
    ):
        if bound is not None and not holds(bound):
            return f"expected `{name}` {op} {bound}, got {value!r}"
    if t.multiple_of is not None and value % t.multiple_of != 0:
        return f"expected `{name}` that is a multiple of {t.multiple_of}, got {value!r}"
    return None


def _length_problem(value: Any, t: Any, name: str) -> str | None:
    if t.min_length is not None and len(value) < t.min_length:
        return f"expected `{name}` of length >= {t.min_length}, got length {len(value)}"
    if t.max_length is not None and len(value) > t.max_length:
        return f"expected `{name}` of length <= {t.max_length}, got length {len(value)}"
    return None


_KEY_IN = "key` in `"


def _report_unforeseen(ctx: FileContext, exc: msgspec.ValidationError) -> None:
    """A refusal the walk did not foresee: msgspec's own words, where its ``$.path`` says.

    msgspec ends its messages with `` - at `$.operations[...].steps[0]` `` (`` - at `key` in
    `$.vars` `` for a dict key); ``[...]`` stands for a dict key it does not name, so the
    position is that of the dict.
    """
    text = str(exc)
    message, sep, where = text.rpartition(" - at `")
    if not sep:
        message, where = text, "$`"
    if where.startswith(_KEY_IN):
        where = where[len(_KEY_IN):]
    path = yamlpos.parse_msgspec_path(where.rstrip("`"))
    if yamlpos.ANY_KEY in path:
        path = path[: path.index(yamlpos.ANY_KEY)]
    ctx.report(path, rules.CONFIG_WRONG_TYPE, message)
