"""JMESPath, compiled once, over bodies whose numbers are exact ``Decimal``.

Provider JSON is decoded with fractions as ``Decimal`` (money must not pass through float).
jmespath 1.x types values by their Python type name and knows no ``Decimal``: ``sum``, ``max``,
``abs``, ``sort_by`` and friends would refuse such numbers, ``type()`` would return null and
``to_string`` would quote them. :data:`OPTIONS` fixes that for every expression of the gateway.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Callable

import jmespath
import jmespath.functions
from jmespath import exceptions, visitor

_NUMBER = ("float", "int", "long", "Decimal")


class _Functions(jmespath.functions.Functions):
    def _get_allowed_pytypes(self, types: Any) -> Any:
        allowed, subtypes = super()._get_allowed_pytypes(types)
        if "float" in allowed:
            allowed = [*allowed, "Decimal"]
        subtypes = [tuple(sub) + ("Decimal",) if "float" in sub else sub for sub in subtypes]
        return allowed, subtypes

    def _convert_to_jmespath_type(self, pyobject: Any) -> str:
        return "number" if pyobject == "Decimal" else super()._convert_to_jmespath_type(pyobject)

    @jmespath.functions.signature({"types": []})
    def _func_type(self, arg: Any) -> str | None:
        return _type_name(arg)

    @jmespath.functions.signature({"types": []})
    def _func_to_string(self, arg: Any) -> str:
        if isinstance(arg, Decimal):
            return str(arg)
        return jmespath.functions.Functions._func_to_string(self, arg)

    @jmespath.functions.signature({"types": ["string", "number"]})
    def _func_to_number(self, arg: Any) -> Any:
        if isinstance(arg, Decimal):
            return arg
        if isinstance(arg, str):
            try:
                value = Decimal(arg)
            except ArithmeticError:
                return None
            return value if value.is_finite() else None
        return arg


def _type_name(arg: Any) -> str | None:
    if isinstance(arg, str):
        return "string"
    if isinstance(arg, bool):
        return "boolean"
    if isinstance(arg, list):
        return "array"
    if isinstance(arg, dict):
        return "object"
    if isinstance(arg, (float, int, Decimal)):
        return "number"
    return "null" if arg is None else None


OPTIONS = jmespath.Options(custom_functions=_Functions())
# One interpreter for every search. jmespath's own `search` builds a new one per call, and each
# holds a cache of its bound methods, a reference cycle: three cyclic objects left per expression
# for the garbage collector, whose passes were ~10% of a webhook's CPU (docs/performance.md).
# The interpreter keeps no state between searches beyond that cache.
_INTERPRETER = visitor.TreeInterpreter(OPTIONS)
FUNCTION_NAMES = frozenset(name[len("_func_"):] for name in dir(_Functions) if name.startswith("_func_"))


Evaluate = Callable[[Any], Any]


def _closure(node: dict[str, Any]) -> Evaluate:
    """A parsed expression as nested Python functions, for the nodes mappings use most (a field,
    a path of fields, an index, a literal, ``==``/``!=``, ``&&``/``||``/``!``, a pipe), each doing
    exactly what jmespath's interpreter does for that node (tests/unit/test_expressions_compiled.py
    compares them on many inputs). Any other node is handed to the interpreter whole, so an
    expression evaluates the same either way, only without a method lookup and a dispatch per node."""
    kind = node["type"]
    children = node.get("children", ())
    if kind == "field":
        name = node["value"]

        def field(value: Any) -> Any:
            try:
                return value.get(name)
            except AttributeError:
                return None
        return field
    if kind in ("subexpression", "pipe", "index_expression"):
        parts = tuple(_closure(child) for child in children)
        if len(parts) == 2:
            first, second = parts
            return lambda value: second(first(value))

        def chain(value: Any) -> Any:
            for part in parts:
                value = part(value)
            return value
        return chain
    if kind == "current":
        return lambda value: value
    if kind == "literal":
        constant = node["value"]
        return lambda value: constant
    if kind == "index":
        position = node["value"]

        def index(value: Any) -> Any:
            if not isinstance(value, list):
                return None
            try:
                return value[position]
            except IndexError:
                return None
        return index
    if kind == "comparator" and node["value"] in ("eq", "ne"):
        left, right = (_closure(child) for child in children)
        if node["value"] == "eq":
            return lambda value: visitor._equals(left(value), right(value))
        return lambda value: not visitor._equals(left(value), right(value))
    if kind in ("and_expression", "or_expression"):
        left, right = (_closure(child) for child in children)
        is_false = _INTERPRETER._is_false
        if kind == "and_expression":
            def both(value: Any) -> Any:
                matched = left(value)
                return matched if is_false(matched) else right(value)
            return both

        def either(value: Any) -> Any:
            matched = left(value)
            return right(value) if is_false(matched) else matched
        return either
    if kind == "not_expression":
        (inner,) = (_closure(child) for child in children)

        def negated(value: Any) -> Any:
            result = inner(value)
            if visitor._is_actual_number(result) and result == 0:
                return False
            return not result
        return negated
    visit = _INTERPRETER.visit
    return lambda value: visit(node, value)


class Compiled:
    """A compiled expression; ``search`` never leaks a value into an error message."""

    __slots__ = ("_evaluate", "_parsed", "source")

    def __init__(self, source: str) -> None:
        self.source = source
        self._parsed = jmespath.compile(source)
        self._evaluate = _closure(self._parsed.parsed)

    @property
    def parsed(self) -> Any:
        return self._parsed.parsed

    def search(self, data: Any) -> Any:
        return self._evaluate(data)


class ExpressionError(Exception):
    """An expression failed at run time; the message names the failure, not the data."""


def search(expr: Compiled, data: Any) -> Any:
    try:
        return expr.search(data)
    except exceptions.JMESPathTypeError as exc:
        raise ExpressionError(f"function `{exc.function_name}()` got a value of the wrong type "
                              f"(expected {', '.join(exc.expected_types)}, got {exc.actual_type})") from None
    except exceptions.JMESPathError as exc:
        raise ExpressionError(type(exc).__name__) from None
