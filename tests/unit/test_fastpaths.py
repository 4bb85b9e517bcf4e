"""The hot path's shortcuts give exactly what the general path gives (docs/performance.md, round 2).

Each shortcut skips machinery for the common case: templates evaluated without a Jinja context,
requests sent to aiohttp without an ``httpx.Request``, webhook routes matched without Litestar,
the webhook log line redacted per value. Each test here compares the shortcut with the path it
replaces, on ordinary and awkward inputs, so a shortcut that drifts fails here.
"""

from __future__ import annotations

import json

import httpx
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway import contracts
from gateway.auth.kind import Authenticator, StaticAuthenticator
from gateway.http.dispatch import Headers, _headers, compile_routes, match
from gateway.language.templating import ENV, REQUEST_ENV, Expr, RenderError, Where
from gateway.logs import redact
from gateway.observe.logformat import _masked_values
from gateway.runtime.upstream.client import Upstream, _Direct, client_headers
from gateway.runtime.upstream.transport import WireTransport
from tests.unit.support import HEAD, compile_ok, provider_of

pytestmark = pytest.mark.unit

WHERE = Where("mapping.yaml", "operations.balance.response.value", 3, 5)


class Card:
    """An object with attributes, as a decoded request is."""

    def __init__(self) -> None:
        self.number = "6006 4911-1111 1111"
        self.pin = None
        self.currency = "usd"


class Identifier(msgspec.Struct):
    """A decoded NewStore request is made of msgspec Structs."""

    number: str
    pin: str | None = None
    keys: str = "a field named like a dict's method"


class Decoded(msgspec.Struct):
    identifier: Identifier
    metadata: dict | None = None


CTX = {
    "request": {"identifier": Card(), "metadata": {"store_id": "store-1"}},
    "decoded": Decoded(Identifier("6006 4911 1111 1111"), {"store_id": "store-1", "items": "a key named like a method"}),
    "steps": {"lookup": {"minor": 5000, "currency": "USD", "items": [1, 2], "zero": 0, "none": None,
                         "keys": "a key named like a method", "_private": "a key with an underscore"},
              "skipped": {"minor": None, "response": None}},
    "vars": {"base_url": "http://x", "empty": ""},
    "idempotence_key": "k-1",
}

EXPRESSIONS = [
    "steps.lookup.currency", " steps.lookup.minor ", "steps.lookup.items", "steps.lookup.zero", "steps.lookup.none",
    "request.identifier.number", "request.identifier.pin", "request.metadata.store_id", "vars.base_url",
    "steps.lookup.items.append",  # a method of a list: the sandbox refuses it
    "steps.lookup.missing", "nothing", "nothing.at.all", "steps.skipped.minor",
    "request.identifier.number | card_number('upper')", "request.identifier.pin | default(omit, true)",
    "vars.empty | default('x', true)", "vars.empty | default('x')", "steps.lookup.minor | from_minor(steps.lookup.currency)",
    "steps.skipped.minor | from_minor('USD')", "request.identifier.currency | upper", "omit", "none", "true",
    "idempotence_key | derive('issue') | fit_key(64, 'A-Za-z0-9_.:-')", "steps.lookup.items | length",
    "steps.lookup['currency']", "steps.lookup.minor + 1", "request.identifier.number | card_number(none)",
    # plain data read without the sandbox's checks: dicts' keys and Structs' fields, and what stays the sandbox's
    "decoded.identifier.number", "decoded.identifier.pin", "decoded.identifier.keys", "decoded.identifier.missing",
    "decoded.identifier.__class__", "decoded.identifier.__struct_fields__", "decoded.metadata.store_id",
    "decoded.metadata.items", "decoded.metadata.missing", "steps.lookup.keys", "steps.lookup.get", "steps.lookup._private",
    "steps.lookup.__class__", "decoded.identifier.number | card_number('upper')",
]


def _outcome(expr: Expr) -> tuple[str, object]:
    try:
        return "value", expr.render(CTX)
    except RenderError as exc:
        return "error", (exc.message, exc.input)


@pytest.mark.parametrize("env", [ENV, REQUEST_ENV], ids=["env", "request_env"])
@pytest.mark.parametrize("source", EXPRESSIONS)
def test_a_template_read_directly_renders_what_jinja_renders(env, source):
    fast = Expr(source, WHERE, env)
    jinja = Expr(source, WHERE, env)
    jinja._direct = None  # the compiled Jinja expression only
    got, want = _outcome(fast), _outcome(jinja)
    assert got[0] == want[0]
    if got[0] == "value":
        assert got[1] is want[1] or got[1] == want[1]
        assert type(got[1]) is type(want[1])
    else:
        assert got[1] == want[1]


def test_plain_reads_and_filter_calls_take_the_direct_path():
    assert Expr("steps.lookup.currency", WHERE)._direct is not None
    assert Expr("request.identifier.number | card_number('upper')", WHERE, REQUEST_ENV)._direct is not None
    assert Expr("steps.lookup.minor + 1", WHERE)._direct is None  # arithmetic: Jinja's
    assert Expr("steps.lookup['currency']", WHERE)._direct is None


# --- upstream: the request without httpx ----------------------------------------------------------


def _client(base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(headers={"Accept-Encoding": "gzip, deflate", "User-Agent": "gw/1"})


def _defaults(client: httpx.AsyncClient) -> tuple[tuple[str, str], ...]:
    return tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in client.headers.raw)


_SMALL_MAPPING = HEAD + """\
operations:
  balance:
    steps:
      - name: lookup
        request: {method: GET, path: /cards}
    response: {value: 1, currency: USD}
  issue: {unsupported: not mapped}
  activate: {unsupported: not mapped}
  deactivate: {unsupported: not mapped}
"""


def test_the_direct_paths_default_headers_are_the_provider_clients(tmp_path):
    """The direct path adds the headers the provider's httpx client (made only when a request
    needs it) would add: the same names, values and order."""
    upstream = Upstream(provider_of(compile_ok(tmp_path, _SMALL_MAPPING)))
    assert upstream._client is None  # not made until a request needs httpx
    assert upstream._direct is not None and upstream._direct._defaults == list(client_headers())
    assert client_headers() == _defaults(upstream.http)


@pytest.mark.parametrize("credentials", [{}, {"Authorization": "Bearer s3cret", "accept": "application/xml"}])
@pytest.mark.parametrize("step_headers", [
    {}, {"Accept": "application/json"}, {"accept": "text/plain", "X-Trace": "1"}, {"Host": "other.example"},
    {"Content-Type": "application/json", "Content-Length": "99", "authorization": "mine"},
    {"USER-AGENT": "mapping/2", "Connection": "close"},
])
def test_direct_headers_are_the_ones_httpx_sends(credentials, step_headers):
    base = "https://api.example.com:8443/v1"
    client = _client(base)
    auth = StaticAuthenticator(dict(credentials)) if credentials else Authenticator()
    direct = _Direct.for_(WireTransport(1000), _defaults(client), auth, httpx.URL(base))
    assert direct is not None
    url = "https://api.example.com:8443/v1/cards/lookup"
    request = client.build_request("POST", url, headers=step_headers, content=b"{}")
    for name, value in credentials.items():  # StaticAuthenticator.apply
        request.headers[name] = value
    # What WireTransport.handle_async_request hands the wire from that request
    want = [(k.decode(), v.decode()) for k, v in request.headers.raw if k.lower() not in (b"content-length", b"transfer-encoding")]
    assert direct.headers(step_headers) == want
    # The layout worked out for these names serves the next request with other values
    again = {name: f"{value}-2" for name, value in step_headers.items()}
    request = client.build_request("POST", url, headers=again, content=b"{}")
    for name, value in credentials.items():
        request.headers[name] = value
    want = [(k.decode(), v.decode()) for k, v in request.headers.raw if k.lower() not in (b"content-length", b"transfer-encoding")]
    assert direct.headers(again) == want


@pytest.mark.parametrize("url", [
    "https://api.example.com/v1/cards/lookup", "https://api.example.com/v1/cards/6006%2F4911", "https://api.example.com/",
    "https://api.example.com/a/./b", "https://api.example.com/a/../b", "https://api.example.com/.well-known/x",
    "https://api.example.com/a b", "https://api.example.com/a?x=1&y=%20", "https://api.example.com/a?", "https://api.example.com/a#f",
    "https://api.example.com/caf\u00e9", "https://api.example.com/a{b}", "https://api.example.com/%zz", "https://API.example.com/a",
    "https://api.example.com:443/a", "https://api.example.com.evil.org/a", "http://api.example.com/a", "https://api.example.com/a?q=\"x\"",
    "https://api.example.com/a|b~c!$&'()*+,;=:@", "https://api.example.com/a?b=c/d?e",
])
def test_a_url_is_sent_directly_only_as_httpx_would_send_it(url):
    base = "https://api.example.com"
    direct = _Direct.for_(WireTransport(1000), _defaults(_client(base)), Authenticator(), httpx.URL(base))
    assert direct is not None
    if direct.takes(url):
        assert str(httpx.URL(url)) == url  # same bytes on the wire
        assert (httpx.URL(url).scheme, httpx.URL(url).host, httpx.URL(url).port) == ("https", "api.example.com", None)


def test_the_direct_path_uses_the_transports_pool_for_the_providers_origin():
    transport = WireTransport(1000)
    direct = _Direct.for_(transport, _defaults(_client("https://api.example.com/v1")), Authenticator(), httpx.URL("https://api.example.com/v1"))
    assert direct is not None
    # one set of kept-alive connections to the provider, whichever path a request takes
    assert direct.pool is transport.pool(("https", "api.example.com", 443))


def test_requests_that_need_httpx_keep_it():
    base = "https://api.example.com"
    # a base URL whose scheme the wire does not speak: the transport refuses it (UnsupportedProtocol)
    assert _Direct.for_(WireTransport(1000), _defaults(_client("ftp://api.example.com")), Authenticator(), httpx.URL("ftp://api.example.com")) is None
    assert _Direct.for_(httpx.MockTransport(lambda r: httpx.Response(200)), _defaults(_client(base)), Authenticator(), httpx.URL(base)) is None

    class Signing(Authenticator):  # computes on the httpx.Request (hmac, oauth2)
        pass

    assert _Direct.for_(WireTransport(1000), _defaults(_client(base)), Signing(), httpx.URL(base)) is None


# --- webhook routes without Litestar -------------------------------------------------------------


@pytest.mark.parametrize(("path", "expected"), [
    ("/sandbox/gift_card/balance", ("gift_card", "sandbox", "balance", {})),
    ("/sandbox/gift_card/nonsense", ("gift_card", "sandbox", "nonsense", {})),  # handle answers unknown_operation
    ("/psp/financial_instruments", ("payment", "psp", "create_instrument", {})),
    ("/psp/financial_instruments/fi-1/_capture", ("payment", "psp", "capture", {"financial_instrument_id": "fi-1"})),
    ("/psp/financial_instruments/fi-1/_revoke", ("payment", "psp", "revoke", {"financial_instrument_id": "fi-1"})),
    ("/sandbox/gift_card/balance/", None), ("//gift_card/balance", None), ("/sandbox/gift_card/", None),
    ("/sandbox/gift_card", None), ("/sandbox/gift_card/balance/x", None), ("/psp/financial_instruments/fi-1/_other", None),
    ("/psp/financial_instruments//_capture", None), ("/health", None), ("/", None),
])
def test_webhook_paths_match_the_contract_routes(path, expected):
    assert match(compile_routes(contracts.CONTRACTS), path) == expected


def test_request_headers_are_looked_up_in_any_case_and_the_first_repeat_wins():
    headers = _headers([(b"Content-Type", b"application/json"), (b"x-api-key", b"a"), (b"X-API-KEY", b"b")])
    assert isinstance(headers, Headers)
    assert headers.get("content-type") == headers.get("Content-Type") == "application/json"
    assert headers["X-Api-Key"] == "a" and "X-API-KEY" in headers and headers.get("missing") is None


# --- the webhook log line, redacted per value ------------------------------------------------------


@pytest.mark.parametrize("fields", [
    {"request_id": "6006491111111111", "provider": "sandbox", "status": 200, "duration_ms": 1.5},
    {"request_id": "abc-6006-4911-1111-1111", "provider": "6006 4911 1111 1111", "operation": "balance"},
    {"message": "card 6006491111111111 refused; pin 1234", "card": "****1111", "calls": 1, "ok": True, "none": None},
    {"ts": "2026-11-26T07:14:49.123Z", "warning": "no idempotence_key: 12345678 and 1234567"},
    {"request_id": "1-2-3-4-5-6-7-8", "short": "1234567", "id": "x12345678", "n": 9_999_999, "f": -9_999_999.5},
])
def test_the_line_redacted_per_value_is_the_line_redacted_whole(fields):
    encode = json.dumps
    masked = _masked_values(dict(fields))
    assert masked is not None
    assert json.loads(encode(masked)) == json.loads(redact(encode(fields)))


@pytest.mark.parametrize("value", [60064911111111, {"nested": "6006491111111111"}, ["6006491111111111"], 1e12])
def test_a_line_with_other_values_is_redacted_whole(value):
    assert _masked_values({"event": "x", "value": value}) is None


@pytest.mark.parametrize("raw", [
    (),
    ((b"Content-Type", b"application/json"), (b"Content-Length", b"12")),
    ((b"Set-Cookie", b"a=1"), (b"X-Trace", b"t"), (b"set-cookie", b"b=2"), (b"SET-COOKIE", b"c=3")),
    ((b"X-Name", "caf\u00e9".encode()), (b"Content-Type", b"text/plain")),  # not ASCII: UTF-8
    ((b"X-Name", b"\xff\xfe"), (b"Content-Type", b"text/plain")),  # not UTF-8 either
    ((b"Empty", b""), (b"empty", b"x")),
])
def test_an_answers_headers_read_directly_are_httpxs(raw):
    from gateway.runtime.upstream.client import plain_headers

    assert plain_headers(raw) == dict(httpx.Headers(raw))
    assert list(plain_headers(raw)) == list(dict(httpx.Headers(raw)))


def test_a_header_value_is_refused_for_exactly_the_characters_it_always_was():
    from gateway.runtime.engine import _header_value
    from gateway.runtime.upstream.codecs import BodyError

    for code in [*range(0x300), 0x2028, 0xFEFF, 0x1F600]:
        text = f"a{chr(code)}b"
        refused = not text.isascii() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)  # the rule as first written
        try:
            _header_value("X-Test", text)
            got = False
        except BodyError:
            got = True
        assert got == refused, hex(code)


@given(mapping=st.dictionaries(st.sampled_from(["Accept", "accept", "X-Key", "x-key", "X-KEY", "Content-Type"]),
                               st.one_of(st.none(), st.just("v1")), max_size=4),
       step=st.dictionaries(st.sampled_from(["ACCEPT", "x-key", "Idempotency-Key", "content-type", "X-Other"]),
                            st.one_of(st.none(), st.just("v2")), max_size=4))
def test_a_steps_headers_replace_the_mappings_in_any_case_as_before(mapping, step):
    from gateway.language.templating import Const, DictValue
    from gateway.runtime.engine import _render_request

    def first_written(*sources):  # the merge as first written: a scan of every header per name
        headers = {}
        for source in sources:
            for name, value in source.items():
                for existing in [h for h in headers if h.lower() == name.lower()]:
                    del headers[existing]
                if value is not None:
                    headers[name] = value
        if not any(h.lower() == "content-type" for h in headers):
            headers["Content-Type"] = "application/json"
        return headers

    class Plan:  # only what _render_request reads
        def __init__(self, **kw):
            self.__dict__.update(kw)

    target = Plan(render=lambda ctx, base: "http://provider.test/v1", route="/v1")
    body = Plan(kind="json", value=Const({"a": 1}), content_type="application/json")
    step_plan = Plan(target=target, query=DictValue(()), headers=DictValue(tuple((k, Const(v)) for k, v in step.items())),
                     body=body, method="POST")
    provider = Plan(base_url="http://provider.test", mapping=Plan(headers=DictValue(tuple((k, Const(v)) for k, v in mapping.items()))))
    sent = _render_request(provider, step_plan, {})
    assert list(sent.headers.items()) == list(first_written(mapping, step).items())


@given(value=st.one_of(st.integers(), st.sampled_from([10**40 - 1, 10**40, -(10**40) + 1, -(10**40), 0, -1])),
       currency=st.sampled_from(["USD", "JPY", "KWD", "CLF", "usd", 0, 2, 8]))
def test_from_minor_of_a_whole_number_is_what_the_general_path_gives(value, currency):
    from gateway.language import money

    def general():  # the whole-number shortcut off: a bool-free int subclass takes the general path
        class Whole(int):
            pass
        return money.from_minor(Whole(value), currency)

    outcomes = []
    for run in (lambda: money.from_minor(value, currency), general):
        try:
            result = run()
            outcomes.append(("value", result, str(result)))
        except money.MoneyError as exc:
            outcomes.append(("error", str(exc), None))
    assert outcomes[0] == outcomes[1]


@given(st.one_of(
    st.text(alphabet=st.sampled_from("0123456789abcdefXYZ_ -\u0663\u00b2\u00e9"), min_size=8, max_size=40),
    st.from_regex(r"[0-9a-f]{32}", fullmatch=True),
    st.from_regex(r"[0-9]{8,20}", fullmatch=True),
    st.text(min_size=8, max_size=30),
))
def test_a_word_of_letters_and_digits_that_the_line_leaves_alone_is_one_redact_leaves_alone(value):
    from gateway.logs import redact

    if value.isalnum() and not value.isdigit():  # what _masked_values does not search
        assert redact(value) == value
