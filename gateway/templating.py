"""Templates: the sandboxed Jinja environment and values compiled from YAML.

A value in a mapping is compiled once, at load time, into a :class:`Value`:

- a string without ``{{``/``{%`` is a constant;
- a string that is exactly one expression (``"{{ request.amount.value | to_minor('USD') }}"``)
  evaluates to the expression's own value, so an int stays an int and a Decimal a Decimal
  ("typed leaves"; never JSON glued together from strings);
- any other string is a text template and renders to a string;
- mappings and lists compile element-wise, and a subtree with no template in it is one constant.

Everything runs in Jinja's ``ImmutableSandboxedEnvironment`` with ``StrictUndefined``: a template
cannot mutate what it is given, call unsafe attributes, or read a name that does not exist
without failing loudly. The context holds only what :func:`context_names` lists; there is no way
to the environment or the file system from a template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

import jinja2
from jinja2 import StrictUndefined, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .filters import FILTERS
from .money import MoneyError

# The names a step or response template may read. Lint and docs use this list.
CONTEXT_NAMES = ("request", "steps", "vars", "idempotence_key", "now")


@dataclass(frozen=True)
class Where:
    """Where a compiled value came from, for errors at run time and load time alike."""

    file: str
    keypath: str
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col} ({self.keypath})"


class TemplateCompileError(Exception):
    """A template or expression does not compile. ``line``/``col`` are relative to the value."""

    def __init__(self, message: str, *, code: str, line: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.line = line


class RenderError(Exception):
    """A compiled value failed at run time; the message names the place, not the data."""

    def __init__(self, message: str, where: Where, cause: BaseException | None = None) -> None:
        super().__init__(f"{where}: {message}")
        self.message = message
        self.where = where
        # True when the request's own data cannot be converted (an amount with more decimals
        # than its currency has, an unknown currency): NewStore sent it, so it is a 400.
        self.bad_input = isinstance(cause, MoneyError)


def _make_env(autoescape: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=autoescape,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    env.filters.update(FILTERS)
    # Keep only harmless globals: no lipsum/cycler/joiner noise in the namespace.
    env.globals = {"range": range, "dict": dict}
    return env


ENV = _make_env(autoescape=False)
XML_ENV = _make_env(autoescape=True)

_RUNTIME_ERRORS = (jinja2.TemplateError, MoneyError, TypeError, ValueError, ArithmeticError, LookupError, AttributeError)


class Value:
    """A compiled YAML value. ``render(ctx)`` returns plain Python data."""

    has_templates: bool = True

    def render(self, ctx: Mapping[str, Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class Const(Value):
    has_templates = False
    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def render(self, ctx: Mapping[str, Any]) -> Any:
        return self.value


class Expr(Value):
    """A single ``{{ expression }}``: evaluates to a native value."""

    __slots__ = ("_fn", "where", "source")

    def __init__(self, source: str, where: Where, env: jinja2.Environment = ENV) -> None:
        self.source = source
        self.where = where
        try:
            self._fn = env.compile_expression(source, undefined_to_none=False)
        except jinja2.TemplateSyntaxError as exc:
            raise _compile_error(exc) from None

    def render(self, ctx: Mapping[str, Any]) -> Any:
        try:
            result = self._fn(**ctx)
            if isinstance(result, jinja2.Undefined):
                result._fail_with_undefined_error()
            return result
        except _RUNTIME_ERRORS as exc:
            raise RenderError(_describe(exc), self.where, exc) from None


class Text(Value):
    """A string template with text around or between expressions: renders to ``str``."""

    __slots__ = ("_template", "where", "source")

    def __init__(self, source: str, where: Where, env: jinja2.Environment = ENV) -> None:
        self.source = source
        self.where = where
        try:
            self._template = env.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise _compile_error(exc) from None

    def render(self, ctx: Mapping[str, Any]) -> str:
        try:
            return self._template.render(ctx)
        except _RUNTIME_ERRORS as exc:
            raise RenderError(_describe(exc), self.where, exc) from None


class DictValue(Value):
    __slots__ = ("items",)

    def __init__(self, items: tuple[tuple[str, Value], ...]) -> None:
        self.items = items

    def render(self, ctx: Mapping[str, Any]) -> dict[str, Any]:
        return {key: value.render(ctx) for key, value in self.items}


class ListValue(Value):
    __slots__ = ("items",)

    def __init__(self, items: tuple[Value, ...]) -> None:
        self.items = items

    def render(self, ctx: Mapping[str, Any]) -> list[Any]:
        return [value.render(ctx) for value in self.items]


_SINGLE = re.compile(r"^\{\{-?(?P<expr>.*?)-?\}\}$", re.DOTALL)


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


def compile_string(source: str, where: Where, *, env: jinja2.Environment = ENV, native: bool = True) -> Value:
    """Compile one string: a constant, a typed single expression, or a text template."""
    if not is_template(source):
        return Const(source)
    if native:
        stripped = source.strip()
        match = _SINGLE.match(stripped)
        if match and _is_single_output(stripped, env):
            return Expr(match.group("expr"), where, env)
    return Text(source, where, env)


def _is_single_output(source: str, env: jinja2.Environment) -> bool:
    try:
        tree = env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise _compile_error(exc) from None
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return False
    parts = tree.body[0].nodes
    return len(parts) == 1 and not isinstance(parts[0], nodes.TemplateData)


def _compile_error(exc: jinja2.TemplateSyntaxError) -> TemplateCompileError:
    message = exc.message or "syntax error"
    code = "GW011" if message.startswith("No filter named") or message.startswith("No test named") else "GW010"
    if code == "GW011":
        message = f"{message.rstrip('.')}; available filters: {', '.join(sorted(FILTERS))} and Jinja's built-ins"
    return TemplateCompileError(message, code=code, line=exc.lineno or 1)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, jinja2.UndefinedError):
        return f"undefined value: {exc.message}"
    if isinstance(exc, jinja2.exceptions.SecurityError):
        return f"not allowed in a template: {exc}"
    if isinstance(exc, MoneyError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
