"""What a template reads, and whether it may.

A template's context is known at load time: ``request`` is the operation's NewStore request
type, ``steps`` holds the earlier steps and the names they extract, ``vars`` the variables the
mapping declares. :func:`reads` walks a template's syntax tree for the dotted paths it reads
(``request.identifier.number``, ``steps.lookup.minor``); :meth:`Scope.check` says which of them
cannot exist, so a typo is a load error at its line instead of a failed webhook in production.
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping

import jinja2
import msgspec
from jinja2 import nodes

from .. import diagnostics as rules
from ..contracts import OPERATIONS
from ..diagnostics import suggest
from ..language.templating import GLOBAL_NAMES, parse


@dataclass(frozen=True)
class Read:
    root: str
    parts: tuple[str | int, ...]
    lineno: int

    @property
    def dotted(self) -> str:
        return ".".join([self.root, *map(str, self.parts)])


@functools.lru_cache(maxsize=4096)
def reads(env: jinja2.Environment, source: str) -> tuple[frozenset[str], tuple[Read, ...]]:
    """The undeclared top-level names of ``source`` and every dotted path rooted at one. Cached
    as :func:`~gateway.language.templating.parse` is: mappings repeat the same templates."""
    parsed = parse(source, env)
    found: list[Read] = []
    _walk(parsed.tree, set(parsed.free), found)
    return parsed.free, tuple(found)


def _walk(node: nodes.Node, free: set[str], out: list[Read]) -> None:
    if isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
        # `steps.x.get('y')`, `vars.get('z', 'us')`: the object is read, the method is not a field.
        _walk(node.node.node, free, out)
        for child in [*node.args, *node.kwargs, node.dyn_args, node.dyn_kwargs]:
            if child is not None:
                _walk(child, free, out)
        return
    if isinstance(node, (nodes.Getattr, nodes.Getitem, nodes.Name)):
        chain = _unwind(node)
        if chain is not None:
            root, parts, rest = chain
            if root.ctx == "load" and root.name in free:
                out.append(Read(root.name, tuple(parts), node.lineno))
            for child in rest:
                _walk(child, free, out)
            return
    for child in node.iter_child_nodes():
        _walk(child, free, out)


def _unwind(node: nodes.Node) -> tuple[nodes.Name, list[str | int], list[nodes.Node]] | None:
    """``a.b['c'].d`` -> (Name a, ['b', 'c', 'd'], [nodes to visit separately])."""
    parts: list[str | int] = []
    rest: list[nodes.Node] = []
    while True:
        if isinstance(node, nodes.Getattr):
            parts.append(node.attr)
            node = node.node
        elif isinstance(node, nodes.Getitem):
            if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, (str, int)):
                parts.append(node.arg.value)
            else:
                parts.clear()  # a computed key: only the part before it can be checked
                rest.append(node.arg)
            node = node.node
        elif isinstance(node, nodes.Name):
            parts.reverse()
            return node, parts, rest
        else:
            return None


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    lineno: int


@dataclass
class Scope:
    """What the templates of one place in a mapping may read."""

    names: tuple[str, ...]
    variables: frozenset[str]
    operation: str | None = None  # None: mapping-level, any operation's request
    steps: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # earlier steps -> extracts
    later_steps: frozenset[str] = frozenset()
    used: set[tuple[str, str]] = field(default_factory=set)  # (step, extract) pairs read

    def with_response(self) -> Scope:
        """The scope of an error rule's message: the same, plus the provider's `response` body."""
        return dataclasses.replace(self, names=self.names + ("response",))

    def check(self, free: frozenset[str], found: tuple[Read, ...]) -> Iterator[Problem]:
        for name in sorted(free - set(self.names) - {*GLOBAL_NAMES, "none", "true", "false"}):
            tail = suggest(name, self.names, f"a template here can read: {', '.join(self.names)}")
            line = next((r.lineno for r in found if r.root == name), 1)
            yield Problem(rules.TEMPLATE_UNDEFINED_NAME, f"template reads `{name}`, which does not exist{tail}", line)
        for read in found:
            if read.root not in self.names:
                continue
            problem = self._check(read)
            if problem is not None:
                yield Problem(problem[0], problem[1], read.lineno)

    def _check(self, read: Read) -> tuple[str, str] | None:
        if read.root == "request" and self.operation is not None and read.parts:
            return _check_request(self.operation, read)
        if read.root == "vars" and read.parts:
            name = read.parts[0]
            if name not in self.variables:
                tail = suggest(name, self.variables, f"declared: {', '.join(sorted(self.variables)) or 'none'}", prefix="vars.")
                return rules.TEMPLATE_UNDECLARED_VAR, f"`vars.{name}` is not declared in the mapping's `vars`{tail}"
        if read.root == "steps" and read.parts and self.operation is not None:
            return self._check_step(read)
        return None

    def _check_step(self, read: Read) -> tuple[str, str] | None:
        step = str(read.parts[0])
        if step not in self.steps:
            if step in self.later_steps:
                return rules.TEMPLATE_UNKNOWN_STEP_VALUE, f"`steps.{step}` runs after this template; only earlier steps can be read"
            known = list(self.steps)
            tail = suggest(step, known, f"earlier steps: {', '.join(known) or 'none'}", prefix="steps.")
            return rules.TEMPLATE_UNKNOWN_STEP_VALUE, f"there is no step `{step}` before this point in `{self.operation}`{tail}"
        extracts = self.steps[step]
        if len(read.parts) < 2:
            self.used.update((step, name) for name in extracts)  # the whole step is read
            return None
        name = str(read.parts[1])
        if name == "response" or name in extracts:
            self.used.add((step, name))
            return None
        tail = suggest(name, extracts, f"it extracts: {', '.join(extracts) or 'nothing'} (and `response`)", prefix=f"steps.{step}.")
        return rules.TEMPLATE_UNKNOWN_STEP_VALUE, f"step `{step}` extracts no `{name}`{tail}"


def _check_request(operation: str, read: Read) -> tuple[str, str] | None:
    type_: Any = OPERATIONS[operation].request_type
    walked: list[str] = []
    for part in read.parts:
        type_ = _unwrap_optional(type_)
        if not (isinstance(type_, type) and issubclass(type_, msgspec.Struct)):
            return None  # a scalar, a free-form object (metadata) or Any: nothing more to know
        names = {f.encode_name: f.name for f in fields(type_)}
        if part not in names:
            carried = ", ".join(_leaves(OPERATIONS[operation].request_type))
            tail = suggest(part, names, prefix=".".join(["request", *walked, ""]))
            return (rules.TEMPLATE_UNKNOWN_REQUEST_FIELD, f"`{read.dotted}` does not exist: `{operation}` requests carry {carried}{tail}")
        walked.append(str(part))
        type_ = hints(type_)[names[part]]
    return None


@functools.cache
def fields(type_: type) -> tuple[Any, ...]:
    """``msgspec.structs.fields``, once per type."""
    return msgspec.structs.fields(type_)


@functools.cache
def hints(type_: type) -> dict[str, Any]:
    """``typing.get_type_hints``, once per type (it evaluates string annotations every call)."""
    return typing.get_type_hints(type_)


def _unwrap_optional(type_: Any) -> Any:
    if typing.get_origin(type_) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(type_) if a is not type(None)]
        if len(args) == 1:
            return _unwrap_optional(args[0])
    if typing.get_origin(type_) is typing.Annotated:
        return _unwrap_optional(typing.get_args(type_)[0])
    return type_


def _leaves(type_: Any, prefix: str = "") -> list[str]:
    out: list[str] = []
    for f in fields(type_):
        inner = _unwrap_optional(hints(type_)[f.name])
        if isinstance(inner, type) and issubclass(inner, msgspec.Struct):
            out.extend(_leaves(inner, f"{prefix}{f.encode_name}."))
        else:
            out.append(f"{prefix}{f.encode_name}")
    return out
