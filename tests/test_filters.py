"""Filters and money conversion, on their own."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from gateway.language import filters

from gateway.language import money
from gateway.language.templating import RenderError, Where, compile_string


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [
        ("1000", "JPY", 1000), ("0", "JPY", 0),
        ("10.50", "USD", 1050), ("0.01", "USD", 1), ("100", "USD", 10000), ("12345678901234.99", "USD", 1234567890123499),
        ("1.234", "KWD", 1234), ("0.001", "KWD", 1), ("7", "KWD", 7000),
    ],
)
def test_minor_units_round_trip(amount, currency, minor):
    assert money.to_minor(Decimal(amount), currency) == minor
    back = money.from_minor(minor, currency)
    assert back == Decimal(amount)
    assert isinstance(back, Decimal)
    assert money.to_minor(back, currency) == minor


@pytest.mark.parametrize(("value", "currency", "text"), [
    (Decimal("10.5"), "USD", "10.50"), (1000, "JPY", "1000"), (Decimal("1.2"), "KWD", "1.200"), (0.1, "EUR", "0.10"),
])
def test_decimal_strings(value, currency, text):
    assert money.to_decimal_string(value, currency) == text
    assert money.to_decimal(text) == Decimal(text)


def test_from_minor_keeps_the_currency_scale():
    assert str(money.from_minor(1050, "USD")) == "10.50"
    assert str(money.from_minor(1000, "JPY")) == "1000"
    assert str(money.from_minor(12345, "kwd")) == "12.345"


def test_floats_convert_through_their_shortest_form():
    assert money.to_minor(0.1, "USD") == 10
    assert money.to_minor(1.15, "USD") == 115  # float(1.15)*100 would give 114.99999999999999
    assert money.to_minor(19.99, 2) == 1999    # an exponent instead of a currency (Voucherify's x100)


@pytest.mark.parametrize(("call", "message"), [
    (lambda: money.to_minor(Decimal("10.005"), "USD"), "the amount has more decimal places than USD allows (2)"),
    (lambda: money.to_minor(Decimal("1.5"), "JPY"), "the amount has more decimal places than JPY allows (0)"),
    (lambda: money.to_minor(1, "XXY"), "`XXY` is not an ISO 4217 currency code"),
    (lambda: money.to_minor("abc", "USD"), "the value is not a decimal number"),
    (lambda: money.to_minor(True, "USD"), "a boolean is not an amount"),
    (lambda: money.from_minor(Decimal("10.5"), "USD"), "a minor-unit amount must be a whole number"),
    (lambda: money.to_decimal_string(Decimal("1.0001"), "KWD"), "the amount has more decimal places than KWD allows (3)"),
    (lambda: money.to_minor(Decimal("NaN"), "USD"), "an amount must be a finite number"),
])
def test_money_refuses_to_round(call, message):
    with pytest.raises(money.MoneyError) as info:
        call()
    assert str(info.value) == message


@pytest.mark.parametrize(("raw", "case", "expected"), [
    ("6006 4911-1111 1111", None, "6006491111111111"),
    (" ab12-cd34 ", "upper", "AB12CD34"),
    ("AB12\tCD34", "lower", "ab12cd34"),
    ("5h78k5367h09q34n22", "upper", "5H78K5367H09Q34N22"),
])
def test_card_number_normalisation(raw, case, expected):
    assert filters.card_number(raw, case) == expected


def test_card_number_rejects_unknown_case():
    with pytest.raises(filters.FilterError, match="must be 'upper' or 'lower'"):
        filters.card_number("1234", "title")


def test_urlsegment_encodes_slashes_and_specials():
    assert filters.urlsegment("A/B C%#?") == "A%2FB%20C%25%23%3F"


def test_keys_derive_and_fit():
    assert filters.derive("k1", "create") == "k1-create"
    assert filters.fit_key("short-key", 64) == "short-key"
    long = "x" * 100
    fitted = filters.fit_key(long, 64)
    assert len(fitted) == 64 and fitted == filters.fit_key(long, 64)  # stable across retries
    assert filters.fit_key(long + "a", 20) != filters.fit_key(long + "b", 20)  # no prefix collisions
    assert filters.fit_key("has space", 50, "A-Za-z0-9_-") != "has space"
    assert filters.fit_key("ok_key-1", 50, "A-Za-z0-9_-") == "ok_key-1"
    assert len(filters.fit_key("abc", 50, "A-Za-z0-9_-", min_length=5)) == 50
    with pytest.raises(filters.FilterError):
        filters.derive(None, "x")


def test_rfc3339():
    now = dt.datetime(2023, 12, 31, 10, 11, 17, 123456, tzinfo=dt.UTC)
    assert filters.rfc3339(now) == "2023-12-31T10:11:17Z"
    with pytest.raises(filters.FilterError):
        filters.rfc3339(dt.datetime(2023, 1, 1))


def test_typed_leaves_keep_their_type():
    where = Where("m.yaml", "x")
    ctx = {"request": {"amount": {"value": Decimal("10.5"), "currency": "USD"}}}
    assert compile_string("{{ request.amount.value | to_minor(request.amount.currency) }}", where).render(ctx) == 1050
    assert compile_string("{{ request.amount.value }}", where).render(ctx) == Decimal("10.5")
    assert compile_string("{{ request.amount }}", where).render(ctx) == ctx["request"]["amount"]
    assert compile_string("n={{ request.amount.value | to_minor('USD') }}", where).render(ctx) == "n=1050"
    assert compile_string("{{ none }}", where).render(ctx) is None


def test_templates_are_sandboxed_and_strict():
    where = Where("m.yaml", "x")
    with pytest.raises(RenderError, match="undefined value"):
        compile_string("{{ request.missing }}", where).render({"request": {}})
    with pytest.raises(RenderError, match="not allowed in a template"):
        compile_string("{{ request.__class__.__mro__ }}", where).render({"request": {}})
    with pytest.raises(RenderError):
        compile_string("{{ request.update({'a': 1}) }}", where).render({"request": {}})  # immutable
