"""The helpers that each piece of once-repeated logic now lives in, one test group each.

"Did you mean" (diagnostics.suggest), the exact-decimal JSON codec (language.jsonexact), status
specs (language.statuses), the http(s)-URL check (language.urls), provider route names, store
URLs (runtime.idempotency.store) and secret-looking names (redact.secret_key, used by masking
and by lint's GW050).
"""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from gateway.compile import checks
from gateway.compile.gateway_file import is_route_name
from gateway.diagnostics import suggest
from gateway.language import jsonexact
from gateway.language.statuses import StatusSpecError, parse_statuses
from gateway.language.urls import is_absolute_http
from gateway.redact import Redactor, secret_key

pytestmark = pytest.mark.unit


# --- diagnostics.suggest ---------------------------------------------------------------------


def test_suggest_names_the_closest_candidate():
    assert suggest("lenght", ["length", "keys", "values"]) == "; did you mean `length`?"


def test_suggest_falls_back_to_otherwise_then_to_nothing():
    assert suggest("zzz", ["length"], "it has: length") == "; it has: length"
    assert suggest("zzz", ["length"]) == ""
    assert suggest("zzz", []) == ""


def test_suggest_shows_the_prefix_and_takes_any_iterable():
    assert suggest("regoin", {"region": 1, "tier": 2}, prefix="vars.") == "; did you mean `vars.region`?"
    assert suggest(0, ["0x"]) == "; did you mean `0x`?"  # a list index or numeric key is a word too


def test_suggest_does_not_depend_on_candidate_order():
    names = ["balance", "balances", "balanced"]
    assert suggest("balancee", names) == suggest("balancee", list(reversed(names)))


# --- language.jsonexact ----------------------------------------------------------------------


def test_jsonexact_keeps_decimals_exact_both_ways():
    data = jsonexact.decode(b'{"amount": 10.10, "count": 3, "tiny": 0.1}')
    assert data == {"amount": Decimal("10.10"), "count": 3, "tiny": Decimal("0.1")}
    assert type(data["count"]) is int
    assert jsonexact.encode(data) == b'{"amount":10.10,"count":3,"tiny":0.1}'


def test_jsonexact_typed_decoder_validates():
    class Money(msgspec.Struct):
        value: Decimal

    decoder = jsonexact.decoder(Money)
    assert decoder.decode(b'{"value": 50.00}').value == Decimal("50.00")
    with pytest.raises(msgspec.ValidationError):
        decoder.decode(b'{"value": "x"}')


def test_jsonexact_errors_are_msgspecs():
    with pytest.raises(msgspec.DecodeError):
        jsonexact.decode(b"{")
    with pytest.raises(TypeError):
        jsonexact.encode(object())


# --- language.statuses -----------------------------------------------------------------------


def test_status_codes_classes_and_lists():
    assert parse_statuses(404) == {404}
    assert parse_statuses("4xx") == frozenset(range(400, 500))
    assert parse_statuses([404, "5xx"]) == {404, *range(500, 600)}


@pytest.mark.parametrize("bad", [99, 600, "6xx", "4XX", "404", "4xx\n", True, [404, "nope"]])
def test_status_spec_errors_name_the_item(bad):
    with pytest.raises(StatusSpecError) as caught:
        parse_statuses(bad)
    assert "is not an HTTP status: write a code like 404 or a class like \"4xx\"" in str(caught.value)


def test_shadowing_check_uses_the_same_reading():
    from gateway.config import model

    broad = model.ErrorRule(error_code="x", message="m", status="4xx")
    narrow = model.ErrorRule(error_code="y", message="m", status=[404, 409])
    wrong = model.ErrorRule(error_code="z", message="m", status="4xy")
    assert checks._covers(broad, narrow) and not checks._covers(narrow, broad)
    assert not checks._covers(broad, wrong)  # a spec compile rejects (GW004) shadows and is shadowed by nothing


# --- language.urls.is_absolute_http / route names / store URLs ------------------------------


@pytest.mark.parametrize("url, ok", [
    ("https://api.example.com", True), ("http://127.0.0.1:8080/v1", True), ("https://h", True),
    ("ftp://example.com", False), ("https://", False), ("https:///path", False), ("https:// host", False),
    ("//example.com", False), ("example.com", False), ("", False), ("HTTPS://example.com", False),
])
def test_absolute_http(url, ok):
    assert is_absolute_http(url) is ok


@pytest.mark.parametrize("name, ok", [
    ("acme", True), ("acme-eu_2", True), ("9lives", True), ("a" * 63, True),
    ("a" * 64, False), ("Acme", False), ("-acme", False), ("acme/eu", False), ("", False), ("acme\n", False),
])
def test_route_names(name, ok):
    assert is_route_name(name) is ok


# --- secret-looking names: redact.secret_key for masking and GW050 ---------------------------


@pytest.mark.parametrize("key", [
    "Authorization", "X-Api-Key", "api_key", "apiKey", "APIKey", "x-apikey", "token", "accessToken", "X-App-Token",
    "client_secret", "clientSecret", "password", "passwd", "passcode", "signature", "X-Signature", "credential",
    "credentials", "pin", "PIN", "pinCode", "PINCODE", "cvv", "cvv2", "cvc", "securityCode", "security_code",
])
def test_secret_names(key):
    assert secret_key(key)


@pytest.mark.parametrize("key", ["", "shipping", "spinner", "amount", "currency", "card_number", "opinion", "description"])
def test_not_secret_names(key):
    assert not secret_key(key)


def test_masking_and_lint_agree_on_names():
    redactor = Redactor()
    masked = redactor.data({"X-Api-Key": "abcdefgh12", "credential": "c", "pin": "1234", "note": "hello"})
    assert masked == {"X-Api-Key": "***", "credential": "***", "pin": "***", "note": "hello"}
    assert checks._looks_secret("X-Api-Key", "abcdefgh12") and checks._looks_secret("pin", "12345678")
    assert not checks._looks_secret("note", "abcdefgh12")
    assert not checks._looks_secret("pin", "1234")  # too short to be a credential written literally


def test_request_field_hint_reads_like_the_others(tmp_path):
    from gateway.compile.gateway_file import load_mapping

    (tmp_path / "m.yaml").write_text(
        "base_url: https://api.example.com\n"
        "operations:\n"
        "  balance:\n"
        "    steps:\n"
        "      - name: lookup\n"
        "        request: {path: /cards, json: {number: \"{{ request.identifier.numbr }}\"}}\n"
        "    response: {value: 1, currency: USD}\n"
    )
    _, diagnostics = load_mapping(tmp_path / "m.yaml")
    messages = [d.message for d in diagnostics if d.code == "GW013"]
    assert messages == ["`request.identifier.numbr` does not exist: `balance` requests carry identifier.number, "
                        "identifier.pin, metadata; did you mean `request.identifier.number`?"]
