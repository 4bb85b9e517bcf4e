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

import functools
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import jinja2
import msgspec
from jinja2 import StrictUndefined, nodes
from jinja2.parser import Parser
from jinja2.sandbox import ImmutableSandboxedEnvironment

from .. import diagnostics as rules
from .filters import FILTERS, InputError
from .money import MoneyError

# The names every operation's templates may read; each NewStore contract adds its own
# (gateway.contracts: `idempotence_key` for gift cards; `idempotency_key`, `instrument_id`,
# `available` for payments).
CONTEXT_NAMES = ("request", "steps", "vars", "now", "webhook_id", "request_id")


class _Omit:
    """``omit``: a mapping value or list item that renders to it is left out (Ansible's ``omit``).

    Only a whole single-expression value can be omitted; turned into text anywhere (``"x{{ omit
    }}"``, a path, an XML body) it fails instead of printing a placeholder.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "omit"

    def __str__(self) -> str:
        raise TypeError(OMIT_MISUSE)

    __html__ = __str__  # markupsafe's escape (the XML environment) asks for this first

    def __reduce__(self) -> str:
        return "OMIT"  # a copy is the same sentinel


OMIT_MISUSE = ("`omit` can only be the whole value of a field or list item "
               "(json, graphql variables, query, headers, form, response); it cannot become text")
OMIT = _Omit()
# Names every template may read besides its context: the environment's globals, and Jinja's literals.
GLOBAL_NAMES = ("range", "dict", "omit")


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
    """A compiled value failed at run time; the message names the place, not the data.

    ``input`` is true when a filter found NewStore's input unusable (:class:`~gateway.language.filters.InputError`):
    the webhook is then a 400, not a mapping error.
    """

    def __init__(self, message: str, where: Where, *, input: bool = False) -> None:
        super().__init__(f"{where}: {message}")
        self.message = message
        self.where = where
        self.input = input


class NullRendered(ValueError):
    """A request template would print ``null`` as the text ``None``."""


def _reject_null(value: Any) -> Any:
    if value is None:
        raise NullRendered("null")
    return value


# Filters that handle null on purpose; in request templates every other filter refuses it, so
# `steps.x.code | urlsegment` with no code is an error instead of the text "None".
_NULL_AWARE_FILTERS = frozenset({"default", "d", "tojson"})


def _null_strict(name: str, fn: Any) -> Any:
    offset = 1 if getattr(fn, "jinja_pass_arg", None) is not None else 0  # context/env comes first

    @functools.wraps(fn)
    def strict(*args: Any, **kwargs: Any) -> Any:
        if len(args) > offset and args[offset] is None:
            raise NullRendered(f"the `{name}` filter was given null")
        return fn(*args, **kwargs)

    return strict


def make_env(autoescape: bool, finalize: Any = None) -> ImmutableSandboxedEnvironment:
    """A sandboxed environment; with ``finalize`` (request templates) null is refused as text."""
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=autoescape,
        keep_trailing_newline=True,
        auto_reload=False,
        finalize=finalize,
    )
    env.filters.update(FILTERS)
    if finalize is not None:
        env.filters.update({name: fn if name in _NULL_AWARE_FILTERS else _null_strict(name, fn)
                            for name, fn in env.filters.items()})
    # Keep only harmless globals: no lipsum/cycler/joiner noise in the namespace.
    env.globals = {"range": range, "dict": dict, "omit": OMIT}
    return env


# Responses, error messages and conditions.
ENV = make_env(autoescape=False)
# What is sent to a provider: a text template never prints null as `None` (a voucher named
# "None" exists somewhere); `{{ x or '' }}` says so when empty text is really meant. Paths and
# URLs have an environment of their own (gateway.language.urls).
REQUEST_ENV = make_env(autoescape=False, finalize=_reject_null)
XML_ENV = make_env(autoescape=True, finalize=_reject_null)

_RUNTIME_ERRORS = (jinja2.TemplateError, MoneyError, TypeError, ValueError, ArithmeticError, LookupError, AttributeError)


# Generating a template's code is most of loading a mapping (~0.8 ms each); the same text in the
# same environment always gives the same code, and Jinja's compiled templates keep no state, so
# every value with that text shares one: providers whose mappings repeat templates (copies of
# one mapping, `{{ request.identifier.number }}`) pay for each text once.
@functools.lru_cache(maxsize=16384)
def _expression_code(env: jinja2.Environment, source: str) -> Any:
    return env.compile_expression(source, undefined_to_none=False)


@functools.lru_cache(maxsize=16384)
def _direct_code(env: jinja2.Environment, source: str) -> Direct | None:
    return _direct(env, source)


@functools.lru_cache(maxsize=16384)
def _template_code(env: jinja2.Environment, source: str) -> jinja2.Template:
    return env.from_string(source)


_MISSING = object()


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




Direct = Callable[[Mapping[str, Any]], Any]  # a render without Jinja's machinery, or _MISSING
_DICT_ATTRIBUTES = frozenset(dir(dict))


@functools.lru_cache(maxsize=1024)
def _struct_fields(kind: type) -> frozenset[str]:
    """The public fields of a msgspec Struct type; nothing for any other type."""
    if not issubclass(kind, msgspec.Struct):
        return frozenset()
    return frozenset(name for name in kind.__struct_fields__ if not name.startswith("_"))


def _direct(env: jinja2.Environment, source: str) -> Direct | None:
    """Most mapping templates are a variable read, maybe through a filter: ``steps.lookup.currency``,
    ``request.identifier.number | card_number('upper')``, ``x | default(omit, true)``. Those are
    evaluated here, as the code Jinja generates for them would (the sandbox's ``getattr`` for each
    ``.attr``, the filter called with the same arguments), without a Jinja context per render,
    which was most of their cost. Anything else is None: Jinja renders it. A render that meets
    something unusual (a name not given, an undefined or unsafe attribute) returns ``_MISSING``,
    and Jinja renders it for its own answer or error."""
    try:
        parser = Parser(env, source, state="variable")
        tree = parser.parse_expression()
        if not parser.stream.eos:
            return None
    except jinja2.TemplateSyntaxError:
        return None
    return _direct_node(env, tree)


def _direct_node(env: jinja2.Environment, node: nodes.Node) -> Direct | None:
    if isinstance(node, nodes.Const):
        const = node.value
        return lambda ctx: const
    if isinstance(node, nodes.Name) and node.ctx == "load":
        name, globals_ = node.name, env.globals

        def read(ctx: Mapping[str, Any]) -> Any:
            value = ctx.get(name, _MISSING)
            return globals_.get(name, _MISSING) if value is _MISSING else value
        return read
    if isinstance(node, nodes.Getattr):
        inner = _direct_node(env, node.node)
        if inner is None:
            return None
        attr, getattr_ = node.attr, env.getattr
        plain = not attr.startswith("_")  # the sandbox refuses any `_name`: its getattr decides

        def get(ctx: Mapping[str, Any]) -> Any:
            value = inner(ctx)
            if value is _MISSING:
                return value
            kind = type(value)
            if plain:
                # The sandbox's answer for plain data, without its checks: a dict's key (unless
                # the dict has an attribute of that name, which Jinja would read first), a
                # msgspec Struct's field (data NewStore sent, never a callable or a type).
                if kind is dict:
                    if attr not in _DICT_ATTRIBUTES:
                        found = value.get(attr, _MISSING)
                        if found is not _MISSING:
                            return found
                elif attr in _struct_fields(kind):
                    return getattr(value, attr)
            value = getattr_(value, attr)
            return _MISSING if isinstance(value, jinja2.Undefined) else value
        return get
    if (isinstance(node, nodes.Filter) and node.node is not None and not node.kwargs
            and node.dyn_args is None and node.dyn_kwargs is None and node.name in env.filters):
        fn = env.filters[node.name]
        if getattr(fn, "jinja_pass_arg", None) is not None:  # wants the context or environment: Jinja's job
            return None
        parts = [_direct_node(env, n) for n in (node.node, *node.args)]
        if any(p is None for p in parts):
            return None
        evaluators: tuple[Direct, ...] = tuple(parts)  # type: ignore[arg-type]

        def call(ctx: Mapping[str, Any]) -> Any:
            values = []
            for evaluate in evaluators:
                value = evaluate(ctx)
                if value is _MISSING:
                    return value
                values.append(value)
            return fn(*values)
        return call
    return None


class Expr(Value):
    """A single ``{{ expression }}``: evaluates to a native value."""

    __slots__ = ("_fn", "_env", "where", "source", "_direct")

    def __init__(self, source: str, where: Where, env: jinja2.Environment = ENV, *, eager: bool = True) -> None:
        self.source = source
        self.where = where
        self._env = env
        self._fn: Any = None
        self._direct = _direct_code(env, source)
        if eager:
            self._compile()

    def _compile(self) -> None:
        try:
            self._fn = _expression_code(self._env, self.source)
        except jinja2.TemplateSyntaxError as exc:
            raise _compile_error(exc) from None

    def render(self, ctx: Mapping[str, Any]) -> Any:
        if self._fn is None:  # compiled on first use when loaded for lint only
            self._compile()
        try:
            if self._direct is not None:  # a variable read, maybe filtered: see _direct
                result = self._direct(ctx)
                if result is not _MISSING:
                    return result
            result = self._fn(**ctx)
            if isinstance(result, jinja2.Undefined):
                result._fail_with_undefined_error()
            return result
        except _RUNTIME_ERRORS as exc:
            raise RenderError(_describe(exc), self.where, input=isinstance(exc, InputError)) from None


class Text(Value):
    """A string template with text around or between expressions: renders to ``str``."""

    __slots__ = ("_template", "_env", "where", "source")

    def __init__(self, source: str, where: Where, env: jinja2.Environment = ENV, *, eager: bool = True) -> None:
        self.source = source
        self.where = where
        self._env = env
        self._template: Any = None
        if eager:
            self._compile()

    def _compile(self) -> None:
        try:
            self._template = _template_code(self._env, self.source)
        except jinja2.TemplateSyntaxError as exc:
            raise _compile_error(exc) from None

    def render(self, ctx: Mapping[str, Any]) -> str:
        if self._template is None:
            self._compile()
        try:
            return self._template.render(ctx)
        except _RUNTIME_ERRORS as exc:
            raise RenderError(_describe(exc), self.where, input=isinstance(exc, InputError)) from None


class DictValue(Value):
    __slots__ = ("items",)

    def __init__(self, items: tuple[tuple[str, Value], ...]) -> None:
        self.items = items

    def render(self, ctx: Mapping[str, Any]) -> dict[str, Any]:
        out = {}
        for key, value in self.items:
            rendered = value.render(ctx)
            if rendered is not OMIT:
                out[key] = rendered
        return out


class ListValue(Value):
    __slots__ = ("items",)

    def __init__(self, items: tuple[Value, ...]) -> None:
        self.items = items

    def render(self, ctx: Mapping[str, Any]) -> list[Any]:
        return [rendered for rendered in (value.render(ctx) for value in self.items) if rendered is not OMIT]


_SINGLE = re.compile(r"^\{\{-?(?P<expr>.*?)-?\}\}$", re.DOTALL)


def is_template(text: str) -> bool:
    return "{{" in text or "{%" in text or "{#" in text


def compile_string(source: str, where: Where, *, env: jinja2.Environment = ENV, native: bool = True,
                   eager: bool = True) -> Value:
    """Compile one string: a constant, a typed single expression, or a text template.

    ``eager=False`` (lint) checks everything code generation would reject, from the syntax tree
    alone, and leaves generating code to the first render; the checks are the same either way.
    """
    if not is_template(source):
        return Const(source)
    parsed = parse(source, env)
    if native and parsed.expression is not None:
        return Expr(parsed.expression, where, env, eager=eager)
    return Text(source, where, env, eager=eager)


@dataclass(frozen=True)
class Parsed:
    tree: nodes.Template
    expression: str | None  # the expression's source when the template is exactly one `{{ }}`
    free: frozenset[str]  # names read from the context (not assigned by the template itself)


_NOT_IN_MAPPINGS = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport, nodes.Block, nodes.Macro,
                    nodes.CallBlock)


@functools.lru_cache(maxsize=4096)
def parse(source: str, env: jinja2.Environment = ENV) -> Parsed:
    """Parse and check a template once; the same text parses to the same (unmodified) tree.

    One walk over the tree finds what code generation would reject (unknown filters and tests,
    loader-only tags, assigning to `loop`) and the names the template reads.
    """
    try:
        tree = env.parse(source)
    except jinja2.TemplateSyntaxError as exc:
        raise _compile_error(exc) from None
    loaded: set[str] = set()
    stored: set[str] = set()
    for node in tree.find_all(nodes.Node):
        if isinstance(node, nodes.Name):
            if node.ctx == "load":
                loaded.add(node.name)
            else:
                stored.add(node.name)
                if node.ctx == "store" and node.name == "loop":
                    raise TemplateCompileError("cannot assign to the special `loop` variable", code=rules.TEMPLATE_SYNTAX, line=node.lineno)
        elif isinstance(node, (nodes.Filter, nodes.Test)):
            table, kind = (env.filters, "filter") if isinstance(node, nodes.Filter) else (env.tests, "test")
            if node.name not in table:
                message = f"No {kind} named '{node.name}'"
                if kind == "filter":
                    message += f"; available filters: {', '.join(sorted(FILTERS))} and Jinja's built-ins"
                raise TemplateCompileError(message, code=rules.TEMPLATE_UNKNOWN_FILTER, line=node.lineno)
        elif isinstance(node, _NOT_IN_MAPPINGS):
            raise TemplateCompileError(f"`{type(node).__name__.lower()}` is not available in mapping templates",
                                       code=rules.TEMPLATE_SYNTAX, line=node.lineno)
    expression = None
    stripped = source.strip()
    match = _SINGLE.match(stripped)
    if match and len(tree.body) == 1 and isinstance(tree.body[0], nodes.Output):
        parts = tree.body[0].nodes
        if len(parts) == 1 and not isinstance(parts[0], nodes.TemplateData):
            expression = match.group("expr")
            # What compile_expression will demand, checked without generating code: the whole
            # text is one expression (`{{ a, }}` parses as a template but not as an expression).
            parser = Parser(env, expression, state="variable")
            try:
                parser.parse_expression()
                if not parser.stream.eos:
                    raise TemplateCompileError("chunk after expression", code=rules.TEMPLATE_SYNTAX,
                                               line=parser.stream.current.lineno)
            except jinja2.TemplateSyntaxError as exc:
                raise _compile_error(exc) from None
    return Parsed(tree, expression, frozenset(loaded - stored - {"loop"}))


def _compile_error(exc: jinja2.TemplateSyntaxError) -> TemplateCompileError:
    message = exc.message or "syntax error"
    code = rules.TEMPLATE_UNKNOWN_FILTER if message.startswith("No filter named") or message.startswith("No test named") else rules.TEMPLATE_SYNTAX
    if code == rules.TEMPLATE_UNKNOWN_FILTER:
        message = f"{message.rstrip('.')}; available filters: {', '.join(sorted(FILTERS))} and Jinja's built-ins"
    return TemplateCompileError(message, code=code, line=exc.lineno or 1)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, jinja2.UndefinedError):
        return f"undefined value: {exc.message}"
    if isinstance(exc, jinja2.exceptions.SecurityError):
        return f"not allowed in a template: {exc}"
    if isinstance(exc, NullRendered):
        where = f" ({exc})" if str(exc) != "null" else ""
        return f"a value is null where text is needed{where}; use `x or ''` if empty text is meant"
    if isinstance(exc, (MoneyError, InputError)):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
