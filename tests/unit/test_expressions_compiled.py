"""Expressions evaluated as Python closures (``expressions._closure``) answer exactly what jmespath's
interpreter answers, with the gateway's options, for every expression and every value tried here:
the same value of the same type, or the same error."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import jmespath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.language import expressions

pytestmark = pytest.mark.unit

EXPRESSIONS = [
    "result", "card.balance.amount_minor", "card.balance.currency", "result == 'ok'", "result != 'ok'",
    "status == `200`", "status == `1`", "status == `true`", "flag == `0`", "a.b.c.d", "a[0]", "a[-1]", "a[5]",
    "a[0].b", "items[1].name", "@", "@.result", "`\"lit\"`", "'raw'", "`{\"a\": 1}`", "`[1, 2]`", "`null`",
    "!result", "!a", "!flag", "!status", "a && b", "a || b", "result == 'ok' && card.balance.amount_minor",
    "error || result", "!(a || b)", "a | b", "card | balance | currency", "a.b | [0]", "result == card.state",
    "status > `100`", "length(a)", "to_string(amount)", "type(amount)", "a[*].b", "a[?b == `1`]", "{x: result}",
    "[result, status]", "sum(a)", "a.b == c.d", "amount == `12.50`", "flag == `false`", "nothing == `null`",
]

LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0, 1, 200, Decimal("12.50"), Decimal("0"), 1.5]),
    st.sampled_from(["", "ok", "USD", "0", "ACTIVE"]),
)
VALUES = st.recursive(
    LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["a", "b", "c", "d", "result", "status", "flag", "card", "balance",
                                         "amount", "currency", "items", "name", "state", "error", "amount_minor"]),
                        inner, max_size=5),
    ),
    max_leaves=12,
)


def _outcome(evaluate: Any) -> tuple[str, Any]:
    try:
        return "value", evaluate()
    except Exception as exc:  # noqa: BLE001 - the same class of error is what is compared
        return "error", type(exc).__name__


def _same(source: str, data: Any) -> None:
    compiled = expressions.Compiled(source)
    reference = jmespath.compile(source)
    got = _outcome(lambda: compiled.search(data))
    want = _outcome(lambda: reference.search(data, options=expressions.OPTIONS))
    assert got[0] == want[0], (source, data, got, want)
    assert got[1] == want[1] and type(got[1]) is type(want[1]), (source, data, got, want)


SAMPLES = [
    {"result": "ok", "card": {"balance": {"amount_minor": 5000, "currency": "USD"}, "state": "ok"}},
    {"result": "", "status": 200, "flag": 0, "a": [1, 2], "b": {}, "amount": Decimal("12.50")},
    {"status": 1, "flag": False, "a": [{"b": 1}, {"b": 2}], "items": [{"name": "x"}, {"name": "y"}]},
    {"a": {"b": {"c": {"d": "deep"}}}, "c": {"d": "deep"}}, {"a": "not a list"}, [1, 2, 3], "text", None, 0, Decimal("1"),
]


@pytest.mark.parametrize("source", EXPRESSIONS)
def test_each_expression_on_the_samples(source):
    for data in SAMPLES:
        _same(source, data)


@settings(max_examples=300, deadline=None)
@given(source=st.sampled_from(EXPRESSIONS), data=VALUES)
def test_each_expression_on_generated_values(source, data):
    _same(source, data)


def test_the_common_nodes_are_closures_and_the_rest_the_interpreter(monkeypatch):
    class NoInterpreter:
        def visit(self, node: Any, value: Any) -> Any:
            raise AssertionError(f"the interpreter visited a {node['type']}")

        _is_false = expressions._INTERPRETER._is_false

    monkeypatch.setattr(expressions, "_INTERPRETER", NoInterpreter())
    for source in ("card.balance.amount_minor", "result == 'ok' && !error || a[0].b", "a | b"):
        expressions._closure(jmespath.compile(source).parsed)({"card": {}, "a": []})
    projection = expressions._closure(jmespath.compile("a[*].b").parsed)
    with pytest.raises(AssertionError, match="projection"):
        projection({"a": [{"b": 1}, {"b": 2}]})
