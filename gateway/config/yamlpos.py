"""YAML loading that remembers where every value came from.

PyYAML's ``safe_load`` forgets positions and silently keeps the last of two duplicate keys.
Here the document is composed into nodes first, so every key path (``("operations", "balance",
"steps", 0)``) maps to the 1-based line and column of its value, and duplicate keys are reported.
The config reader finds problems by walking this data itself; for a refusal of msgspec's that
it did not foresee, :func:`parse_msgspec_path` turns msgspec's ``$.operations[...].steps[0]``
into a key path the index understands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

KeyPath = tuple[str | int, ...]

# libyaml's parser when PyYAML was built with it (the wheels are): ~10x faster, same marks.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Located:
    """A loaded YAML document plus the position of each of its nodes."""

    file: str
    data: Any
    lines: list[str] = field(default_factory=list)
    marks: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    # Where the key of a mapping entry is written (an unknown or misspelt key is reported there).
    key_marks: dict[KeyPath, tuple[int, int]] = field(default_factory=dict)
    # For scalar strings: the node's style ('|', '>', '"', "'" or None), for template offsets.
    styles: dict[KeyPath, str | None] = field(default_factory=dict)

    def position(self, path: KeyPath, *, key: bool = False) -> tuple[int, int]:
        """The closest known position of ``path`` (walking up to its parents).

        With ``key=True``, the position of the key naming ``path`` rather than of its value.
        """
        path = tuple(path)
        if key and path in self.key_marks:
            return self.key_marks[path]
        while path not in self.marks and path:
            path = path[:-1]
        return self.marks.get(path, (1, 1))


@dataclass(frozen=True)
class YamlProblem:
    line: int
    col: int
    message: str
    duplicate: bool = False
    path: KeyPath = ()


def load(file: str, text: str) -> tuple[Located | None, list[YamlProblem]]:
    """Parse ``text``; on a syntax error return ``(None, [problem])``."""
    try:
        node = yaml.compose(text, Loader=_LOADER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        return None, [YamlProblem(line, col, f"YAML syntax error: {message}")]
    except yaml.YAMLError as exc:  # pragma: no cover - every PyYAML error is marked today
        return None, [YamlProblem(1, 1, f"YAML syntax error: {exc}")]
    located = Located(file, None, text.splitlines())
    problems: list[YamlProblem] = []
    if node is None:
        located.data = None
        return located, problems
    try:
        located.data = _build(node, (), located, problems)
    finally:
        _constructor.constructed_objects.clear()  # (it would keep every file's nodes alive)
    return located, problems


def _build(node: yaml.Node, path: KeyPath, out: Located, problems: list[YamlProblem]) -> Any:
    out.marks[path] = (node.start_mark.line + 1, node.start_mark.column + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(
                    YamlProblem(
                        key_node.start_mark.line + 1,
                        key_node.start_mark.column + 1,
                        "YAML merge keys (`<<`) are not supported; write the keys out",
                        path=path,
                    )
                )
                continue
            key = _scalar(key_node)
            if isinstance(key, (dict, list)):
                key = str(key)
            if key in seen:
                problems.append(
                    YamlProblem(
                        key_node.start_mark.line + 1,
                        key_node.start_mark.column + 1,
                        f"duplicate key `{key}` (first defined on line {seen[key]}); "
                        "YAML would silently keep only the last one",
                        duplicate=True,
                        path=path + (key,),
                    )
                )
            seen[key] = key_node.start_mark.line + 1
            out.key_marks[path + (key,)] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = _build(value_node, path + (key,), out, problems)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(child, path + (i,), out, problems) for i, child in enumerate(node.value)]
    out.styles[path] = node.style
    return _scalar(node)


_constructor = yaml.SafeLoader.__new__(yaml.SafeLoader)
yaml.constructor.SafeConstructor.__init__(_constructor)


_STR = "tag:yaml.org,2002:str"


def _scalar(node: yaml.Node) -> Any:
    # A string (most of a mapping) is its node's value: PyYAML's constructor would give the same
    # after a dispatch that was a fifth of loading a mapping. Other tags (numbers, booleans, null,
    # dates) go through it.
    if node.tag == _STR and type(node) is yaml.ScalarNode:
        return node.value
    return _constructor.construct_object(node, deep=True)


_PATH_PART = re.compile(r"\.([A-Za-z_][\w-]*)|\[(\d+)\]|\[(\.\.\.)\]")

ANY_KEY = "[...]"  # msgspec does not name the dict key an error is under; see reader._report_unforeseen


def parse_msgspec_path(text: str) -> KeyPath:
    """``$.operations[...].steps[0]`` -> ``("operations", ANY_KEY, "steps", 0)``."""
    parts: list[str | int] = []
    body = text[1:] if text.startswith("$") else text
    for m in _PATH_PART.finditer(body):
        if m.group(1) is not None:
            parts.append(m.group(1))
        elif m.group(2) is not None:
            parts.append(int(m.group(2)))
        else:
            parts.append(ANY_KEY)
    return tuple(parts)


def format_path(path: KeyPath) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"
