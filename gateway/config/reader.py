"""Reading one config file into its declared type, with diagnostics at ``file:line:col``."""

from __future__ import annotations

from .. import diagnostics as rules

import copy
import difflib
import os
import re
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import msgspec

from ..diagnostics import Diagnostic, Rule, Severity
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


_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`")


def convert(ctx: FileContext, type_: type[T], *, hint: str = "") -> T | None:
    """``msgspec.convert`` the file's data into ``type_``, reporting every problem it can find.

    msgspec stops at the first error. To report more than one, the offending entry is removed
    from a copy of the data and the conversion retried; what converts in the end is returned so
    later checks (templates, expressions) still run, while the diagnostics already make the
    configuration fail.
    """
    data = ctx.located.data
    if data is None:
        ctx.report((), rules.CONFIG_MISSING_FIELD, f"the file is empty; {hint or 'it should be a YAML mapping'}")
        return None
    data = copy.deepcopy(data)
    seen: set[tuple[KeyPath, str]] = set()
    for _ in range(100):
        try:
            return msgspec.convert(data, type_, strict=True)
        except msgspec.ValidationError:
            path, message = locate(type_, data)
        if (path, message) in seen:
            return None
        seen.add((path, message))
        _report_validation(ctx, type_, path, message)
        if not _prune(data, path, message):
            return None
    return None


def _prune(data: Any, path: KeyPath, message: str) -> bool:
    """Remove what ``message`` complains about from ``data``; False if that cannot help."""
    if m := _UNKNOWN.match(message):
        path = path + (m.group("name"),)
    # A missing field: drop the incomplete object itself, so its parent's default applies (or the
    # parent reports it missing in turn).
    if not path:
        return False
    parent = data
    try:
        for part in path[:-1]:
            parent = parent[part]
        del parent[path[-1]]
    except (KeyError, IndexError, TypeError):
        return False
    return True


def locate(type_: Any, data: Any, prefix: KeyPath = ()) -> tuple[KeyPath, str]:
    """The full key path and message of the first validation error in ``data``.

    msgspec writes ``$.operations[...].steps[0]``: it does not say which key of a dict the
    error is under. Converting each entry of that dict on its own finds it.
    """
    try:
        msgspec.convert(data, type_, strict=True)
        return prefix, ""
    except msgspec.ValidationError as exc:
        text = str(exc)
    message, _, where = text.rpartition(" - at `")
    if not message:
        message, where = text, "$`"
    parts = yamlpos.parse_msgspec_path(where.rstrip("`"))
    if yamlpos.ANY_KEY not in parts:
        return prefix + parts, message
    i = parts.index(yamlpos.ANY_KEY)
    node, node_type = data, type_
    for part in parts[:i]:
        node_type = _child_type(node_type, part, node)
        node = node[part]
    value_type = typing.get_args(_unwrap(node_type))[1] if node_type is not None else None
    if isinstance(node, dict) and value_type is not None:
        for key, value in node.items():
            sub_path, sub_message = locate(value_type, value, prefix + parts[:i] + (key,))
            if sub_message:
                return sub_path, sub_message
    return prefix + parts[:i], message


def _unwrap(type_: Any) -> Any:
    while typing.get_origin(type_) is typing.Annotated:
        type_ = typing.get_args(type_)[0]
    return type_


def _report_validation(ctx: FileContext, root: type, path: KeyPath, message: str) -> None:
    if m := _UNKNOWN.match(message):
        name = m.group("name")
        allowed = _fields_at(root, path, ctx.located.data)
        suggestion = difflib.get_close_matches(name, allowed, n=1)
        text = f"unknown field `{name}`"
        if suggestion:
            text += f"; did you mean `{suggestion[0]}`?"
        elif allowed:
            text += f"; allowed here: {', '.join(sorted(allowed))}"
        ctx.report(path + (name,), rules.CONFIG_UNKNOWN_FIELD, text, at_key=True)
    elif m := _MISSING.match(message):
        ctx.report(path, rules.CONFIG_MISSING_FIELD, f"missing required field `{m.group('name')}`")
    else:
        ctx.report(path, rules.CONFIG_WRONG_TYPE, _humanise(message))


def _humanise(message: str) -> str:
    message = message.replace("Expected `", "expected `").replace("Invalid enum value", "invalid value")
    if message.startswith("Expected"):
        message = "e" + message[1:]
    return message


def _fields_at(root: type, path: KeyPath, data: Any) -> list[str]:
    """The field names the Struct at ``path`` accepts, for "did you mean" suggestions."""
    type_: Any = root
    node: Any = data
    for part in path:
        type_ = _child_type(type_, part, node)
        node = node[part] if isinstance(node, (dict, list)) else None
    type_ = _unwrap(type_)
    if typing.get_origin(type_) in (typing.Union, types.UnionType):
        # A tagged union (an auth kind): the member named by the data's `type`.
        tag = node.get("type") if isinstance(node, dict) else None
        members = [a for a in typing.get_args(type_) if isinstance(a, type) and issubclass(a, msgspec.Struct)]
        type_ = next((m for m in members if msgspec.inspect.type_info(m).tag == tag), None)
    if isinstance(type_, type) and issubclass(type_, msgspec.Struct):
        return [f.encode_name for f in msgspec.structs.fields(type_)]
    return []


def _child_type(type_: Any, part: str | int, data: Any) -> Any:
    if type_ is None:
        return None
    origin = typing.get_origin(type_)
    if origin in (list, tuple):
        return typing.get_args(type_)[0]
    if origin is dict:
        return typing.get_args(type_)[1]
    if origin in (typing.Union, types.UnionType):
        structs = [a for a in typing.get_args(type_) if isinstance(a, type) and issubclass(a, msgspec.Struct)]
        if len(structs) == 1:
            return _child_type(structs[0], part, data)
        return None
    if origin is typing.Annotated:
        return _child_type(typing.get_args(type_)[0], part, data)
    if isinstance(type_, type) and issubclass(type_, msgspec.Struct):
        hints = typing.get_type_hints(type_, include_extras=True)
        for f in msgspec.structs.fields(type_):
            if f.encode_name == part:
                return hints.get(f.name)
    return None
