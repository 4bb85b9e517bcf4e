"""JMESPath, compiled once, over bodies whose numbers are exact ``Decimal``.

Provider JSON is decoded with fractions as ``Decimal`` (money must not pass through float).
jmespath 1.x types values by their Python type name and knows no ``Decimal``: ``sum``, ``max``,
``abs``, ``sort_by`` and friends would refuse such numbers, ``type()`` would return null and
``to_string`` would quote them. :data:`OPTIONS` fixes that for every expression of the gateway.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

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


class Compiled:
    """A compiled expression; ``search`` never leaks a value into an error message."""

    __slots__ = ("source", "_parsed")

    def __init__(self, source: str) -> None:
        self.source = source
        self._parsed = jmespath.compile(source)

    @property
    def parsed(self) -> Any:
        return self._parsed.parsed

    def search(self, data: Any) -> Any:
        return _INTERPRETER.visit(self._parsed.parsed, data)


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
