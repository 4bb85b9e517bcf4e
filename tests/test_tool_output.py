"""What `gateway render` and `gateway test` print: readable, and never a card number, PIN or secret.

- a blank or short card number, PIN or secret must not garble the output (masking "" inserts the
  mask between every character) nor be printed where it is a whole field;
- a `gateway test` difference must tell the two sides apart without showing more than a card
  number's last 4, and must mask a PIN on both sides alike;
- every place `render` and `render --send` print (URL path and query, headers, form and XML
  bodies, provider answers, extracted values, NewStore's response, why a step cannot be
  rendered) is masked.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway import cli

from .conftest import ROOT, SANDBOX_KEY_FILE, _leaks, start_simulator, write_config

GATEWAY = [sys.executable, "-m", "gateway.cli"]
SANDBOX = ROOT / "mappings" / "sandbox.yaml"
HEADER = "# sandbox {} (dry run: nothing is sent); card numbers, PINs and secrets are masked"


def gateway(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(GATEWAY + list(args), cwd=cwd, capture_output=True, text=True, input=stdin, timeout=120)


def dry_config(tmp_path: Path, key_file: Path = SANDBOX_KEY_FILE) -> Path:
    """The shipped sandbox mapping at a base URL nothing listens on: for dry runs."""
    return write_config(tmp_path, {"sandbox": {
        "mapping": str(SANDBOX), "vars": {"base_url": "https://sandbox.test"},
        "secrets": {"api_key": {"file": str(key_file)}}, "inbound": "none"}})


def render(tmp_path: Path, operation: str, request: dict, *extra: str, config: Path | None = None) -> list[str]:
    result = gateway("render", "sandbox", operation, "-", "--config", str(config or dry_config(tmp_path)), *extra,
                     cwd=tmp_path, stdin=json.dumps(request))
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


# --- 1. blank and short values ------------------------------------------------------------------


@pytest.mark.parametrize("number", [" ", "  ", "\t", "-", " - "])
def test_render_a_blank_card_number_does_not_garble_the_output(tmp_path, number):
    lines = render(tmp_path, "deactivate", {"card_number": number, "pin": "4801", "store_id": "s-1"})
    assert lines == [
        HEADER.format("deactivate"),
        "",
        "step deactivate",
        # the mapping strips it to nothing: unusable input, refused before anything is sent
        "  (NewStore would get 400 invalid_request: the card number is empty once spaces and dashes are removed)",
    ]


LATER_STEP = """\
base_url: "{{ vars.base_url }}"
vars: {base_url: null}
secrets: [api_key]
auth: {type: header, headers: {X-Api-Key: api_key}}
operations:
  balance:
    steps:
      - name: find
        request: {path: /v1/vouchers, query: {code: "{{ request.identifier.number }}"}}
        extract:
          code: "vouchers[0].code"
      - name: read
        request: {method: GET, path: "/v1/vouchers/{{ steps.find.code | urlsegment }}/balance"}
        extract: {minor: balance}
    response: {value: 0, currency: USD}
"""


def test_render_says_a_step_needs_an_earlier_answer_instead_of_printing_none(tmp_path):
    # Before: `GET https://sandbox.test/v1/vouchers/None/balance`.
    mapping = tmp_path / "later.yaml"
    mapping.write_text(LATER_STEP)
    config = write_config(tmp_path, {"sandbox": {"mapping": str(mapping), "vars": {"base_url": "https://sandbox.test"},
                                                 "secrets": {"api_key": {"file": str(SANDBOX_KEY_FILE)}},
                                                 "inbound": "none"}})
    lines = render(tmp_path, "balance", {"identifier": {"number": "GIFT-1"}}, config=config)
    assert "None" not in "\n".join(lines)
    assert lines[-2:] == ["step read", "  (cannot be rendered without the provider's answers: a value is null where text "
                                       "is needed (the `urlsegment` filter was given null); use `x or ''` if empty text "
                                       "is meant)"]


@pytest.mark.parametrize("number", ["1", "12", "123"])
def test_render_a_short_card_number_is_masked_only_where_it_is_a_whole_field(tmp_path, number):
    lines = render(tmp_path, "deactivate", {"card_number": number, "pin": "4801", "store_id": "s-1"})
    assert lines[3] == "  POST https://sandbox.test/v1/cards/****/deactivate"  # `v1` in the path stays
    assert lines[4:] == ["  Accept: application/json", "  Content-Type: application/json", "  X-Api-Key: ***",
                         '  {"pin":"***","store_ref":"s-1"}']


def test_render_a_short_pin_and_a_one_character_secret(tmp_path):
    key = tmp_path / "short.key"
    key.write_text("k\n")  # a secret of 1 character: masking it inside texts would star every `k`
    lines = render(tmp_path, "balance", {"identifier": {"number": "6006491111111111", "pin": "12"}},
                   config=dry_config(tmp_path, key))
    assert lines == [
        HEADER.format("balance"),
        "",
        "step lookup",
        "  POST https://sandbox.test/v1/cards/lookup",
        "  Accept: application/json",
        "  Content-Type: application/json",
        "  X-Api-Key: ***",
        '  {"number":"****1111","pin":"***"}',
    ]


# --- 2. gateway test: differences that can be told apart ------------------------------------------

CASES = f"""\
mapping: {SANDBOX}
vars: {{base_url: https://sandbox.test}}
secrets: {{api_key: test-api-key}}
cases:
  - name: another card with the same last 4
    operation: balance
    request: {{identifier: {{number: "6006491111111111", pin: "480163"}}}}
    provider:
      lookup: {{body: {{result: ok, card: {{balance: {{amount_minor: 5000, currency: USD}}}}}}}}
    requests:
      lookup: {{json: {{number: "6006481111111111", pin: "480163"}}}}
    expect: {{status: 200}}
  - name: the same wrong card again
    operation: balance
    request: {{identifier: {{number: "6006491111111111", pin: "480163"}}}}
    provider:
      lookup: {{body: {{result: ok, card: {{balance: {{amount_minor: 5000, currency: USD}}}}}}}}
    requests:
      lookup: {{json: {{number: "6006481111111111", pin: "480163"}}}}
    expect: {{status: 200}}
  - name: another PIN in the request
    operation: balance
    request: {{identifier: {{number: "6006491111111111", pin: "480163"}}}}
    provider:
      lookup: {{body: {{result: ok, card: {{balance: {{amount_minor: 5000, currency: USD}}}}}}}}
    requests:
      lookup: {{json: {{number: "6006491111111111", pin: "999999"}}}}
    expect: {{status: 200}}
  - name: another API key
    operation: balance
    request: {{identifier: {{number: "6006491111111111", pin: "480163"}}}}
    provider:
      lookup: {{body: {{result: ok, card: {{balance: {{amount_minor: 5000, currency: USD}}}}}}}}
    requests:
      lookup: {{headers: {{X-Api-Key: not-the-key}}}}
    expect: {{status: 200}}
  - name: another card in the URL
    operation: deactivate
    request: {{card_number: "6006491111111111", pin: "480163"}}
    provider:
      deactivate: {{body: {{result: ok, card: {{deactivated_at: "2026-11-22T10:11:17Z"}}}}}}
    requests:
      deactivate: {{url: https://sandbox.test/v1/cards/6006481111111111/deactivate}}
    expect: {{status: 200}}
  - name: another PIN in the response
    operation: issue
    request: {{amount: {{value: 40, currency: USD}}, customer: {{id: cust-1}}}}
    provider:
      create: {{body: {{result: ok, card: {{number: "6006495555555551", pin: "710551"}}}}}}
    expect: {{status: 200, body: {{identifier: {{number: "6006495555555551", pin: "999999"}}}}, match: subset}}
"""
FP = r"[0-9a-f]{8}"


def _failures(stdout: str) -> dict[str, list[str]]:
    """Each case's failure lines, by case name."""
    out: dict[str, list[str]] = {}
    name = None
    for line in stdout.splitlines():
        head = re.match(r"^cases\.test\.yaml:\d+: (.*) (PASSED|FAILED)$", line)
        if head:
            name = head.group(1)
            out[name] = []
        elif line.startswith("    ") and name:
            out[name].append(line[4:])
    return out


def _fingerprint(line: str) -> str:
    return re.search(rf"fingerprint ({FP})\)$", line).group(1)


@pytest.fixture(scope="module")
def test_run(tmp_path_factory) -> subprocess.CompletedProcess[str]:
    folder = tmp_path_factory.mktemp("cases")
    (folder / "cases.test.yaml").write_text(CASES)
    return gateway("test", "cases.test.yaml", cwd=folder)


def test_a_card_number_difference_shows_last_4_fingerprints_and_where(test_run):
    assert test_run.returncode == 1, test_run.stdout + test_run.stderr
    lines = _failures(test_run.stdout)["another card with the same last 4"]
    assert len(lines) == 4, lines
    assert lines[0] == "request of step `lookup`, json body at $.number:"
    assert re.fullmatch(rf'  expected: "\*\*\*\*1111" \(16 characters, fingerprint {FP}\)', lines[1]), lines[1]
    assert re.fullmatch(rf'  actual:   "\*\*\*\*1111" \(16 characters, fingerprint {FP}\)', lines[2]), lines[2]
    assert lines[3] == "  first difference at character 6"
    assert _fingerprint(lines[1]) != _fingerprint(lines[2])  # the two sides can be told apart
    # Stable: the same values give the same fingerprints in another case of the run.
    again = _failures(test_run.stdout)["the same wrong card again"]
    assert again[1:] == lines[1:]


def test_a_pin_difference_is_masked_on_both_sides(test_run):
    lines = _failures(test_run.stdout)["another PIN in the request"]
    assert lines[0] == "request of step `lookup`, json body at $.pin:"
    assert re.fullmatch(rf'  expected: "\*\*\*" \(fingerprint {FP}\)', lines[1]), lines[1]
    assert re.fullmatch(rf'  actual:   "\*\*\*" \(fingerprint {FP}\)', lines[2]), lines[2]
    assert len(lines) == 3 and _fingerprint(lines[1]) != _fingerprint(lines[2])
    response = _failures(test_run.stdout)["another PIN in the response"]
    assert response[0] == "response, body at $.identifier.pin:"
    assert re.fullmatch(rf'  expected: "\*\*\*" \(fingerprint {FP}\)', response[1]), response[1]
    assert re.fullmatch(rf'  actual:   "\*\*\*" \(fingerprint {FP}\)', response[2]), response[2]
    assert _fingerprint(response[1]) == _fingerprint(lines[1])  # both are the expected 999999
    assert response[3].startswith('  (whole response: {"identifier":{"number":"****5551","pin":"***"}')


def test_a_secret_header_difference_is_masked_on_both_sides(test_run):
    lines = _failures(test_run.stdout)["another API key"]
    assert lines[0] == "request of step `lookup`, header X-Api-Key:"
    assert re.fullmatch(rf'  expected: "\*\*\*" \(fingerprint {FP}\)', lines[1]), lines[1]
    assert re.fullmatch(rf'  actual:   "\*\*\*" \(fingerprint {FP}\)', lines[2]), lines[2]


def test_a_url_difference_inside_a_masked_card_says_so(test_run):
    lines = _failures(test_run.stdout)["another card in the URL"]
    url = '"https://sandbox.test/v1/cards/\\*\\*\\*\\*1111/deactivate"'
    assert lines[0] == "request of step `deactivate`, url:"
    assert re.fullmatch(rf"  expected: {url} \(fingerprint {FP}\)", lines[1]), lines[1]
    assert re.fullmatch(rf"  actual:   {url} \(fingerprint {FP}\)", lines[2]), lines[2]
    assert lines[3] == "  (they differ inside a masked value)"
    assert _fingerprint(lines[1]) != _fingerprint(lines[2])


def test_gateway_test_output_shows_no_card_number_pin_or_key(test_run):
    secrets = {"6006491111111111", "6006481111111111", "6006495555555551", "480163", "999999", "710551",
               "test-api-key", "not-the-key"}
    assert not _leaks(test_run.stdout, secrets)
    assert test_run.stdout.splitlines()[-1].startswith("0 passed, 6 failed in ")


# --- 3. every place render prints ------------------------------------------------------------------

FIELDS_MAPPING = """\
base_url: https://fields.test
operations:
  balance:
    steps:
      - name: by_query
        request:
          method: GET
          path: "/cards/{{ request.identifier.pin }}"
          query: {pin: "{{ request.identifier.pin }}", page: "1", card: "{{ request.identifier.number }}"}
          headers: {X-Card-Pin: "{{ request.identifier.pin }}"}
      - name: by_form
        request:
          method: POST
          path: /cards
          form: {pin: "{{ request.identifier.pin }}", number: "{{ request.identifier.number }}", page: "1"}
      - name: by_xml
        request:
          method: POST
          path: /cards.xml
          xml: "<Card><Number>{{ request.identifier.number }}</Number><Pin>{{ request.identifier.pin }}</Pin><Extra>{{ request.metadata.get('pin') }}</Extra></Card>"
    response: {value: 1, currency: USD}
  issue: {unsupported: not mapped}
  activate: {unsupported: not mapped}
  deactivate: {unsupported: not mapped}
"""


def test_render_masks_short_pins_in_path_query_headers_form_and_xml(tmp_path):
    (tmp_path / "fields.yaml").write_text(FIELDS_MAPPING)
    config = write_config(tmp_path, {"fields": {"mapping": "fields.yaml", "inbound": "none"}})
    request = {"identifier": {"number": "6006491111111111", "pin": "12"}, "metadata": {"pin": "5150"}}
    result = gateway("render", "fields", "balance", "-", "--config", str(config), cwd=tmp_path, stdin=json.dumps(request))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "# fields balance (dry run: nothing is sent); card numbers, PINs and secrets are masked",
        "",
        "step by_query",
        "  GET https://fields.test/cards/***?pin=***&page=1&card=****1111",
        "  X-Card-Pin: ***",
        "",
        "step by_form",
        "  POST https://fields.test/cards",
        "  Content-Type: application/x-www-form-urlencoded",
        "  pin=***&number=****1111&page=1",
        "",
        "step by_xml",
        "  POST https://fields.test/cards.xml",
        "  Content-Type: application/xml; charset=utf-8",
        # A PIN in the request's metadata (Radial's activate takes it from there) is masked too.
        "  <Card><Number>****1111</Number><Pin>***</Pin><Extra>***</Extra></Card>",
    ]


def test_render_masks_why_a_step_cannot_be_rendered(tmp_path, monkeypatch, capsys):
    """`dry_run` reports a step it cannot render as ("unknown", reason); the reason may quote
    what was rendered so far, card number included."""
    import gateway.tools.render

    def dry_run(provider, op, request, **_):
        return [("lookup", "unknown", f"cannot be rendered without the provider's answers: the URL "
                                      f"/v1/cards/{request.card_number}/None needs steps.lookup.tender (pin {request.pin})")]

    monkeypatch.setattr(gateway.tools.render, "dry_run", dry_run)
    request = tmp_path / "deactivate.json"
    request.write_text(json.dumps({"card_number": "6006491111111111", "pin": "4801"}))
    assert cli.main(["render", "sandbox", "deactivate", str(request), "--config", str(dry_config(tmp_path))]) == 0
    assert capsys.readouterr().out.splitlines() == [
        HEADER.format("deactivate"),
        "",
        "step lookup",
        "  (cannot be rendered without the provider's answers: the URL /v1/cards/****1111/None needs "
        "steps.lookup.tender (pin ***))",
    ]


@pytest.fixture
def live_config(sandbox, tmp_path):
    return write_config(tmp_path, {"sandbox": {
        "mapping": str(SANDBOX), "vars": {"base_url": sandbox.url},
        "secrets": {"api_key": {"file": str(SANDBOX_KEY_FILE)}}, "inbound": "none"}})


def test_render_send_shows_an_unreadable_answer_as_text(live_config, sandbox, tmp_path):
    sandbox.add_card("6006491111111111", pin="4801", amount_minor=5000)
    sandbox.fault("garbage")  # 200, application/json, body `<html>upstream exploded</html>`
    lines = render(tmp_path, "balance", {"identifier": {"number": "6006491111111111", "pin": "4801"}}, "--send",
                   config=live_config)
    assert lines[lines.index("  -> HTTP 200") + 1] == "  <html>upstream exploded</html>"  # not base64
    assert not _leaks("\n".join(lines), {"6006491111111111", "4801"})


def test_render_send_masks_a_new_card_everywhere_it_prints(live_config, sandbox, tmp_path):
    lines = render(tmp_path, "issue", {"amount": {"value": 25, "currency": "USD"}, "customer": {"id": "c-1"},
                                       "idempotence_key": "k-1"}, "--send", config=live_config)
    out = "\n".join(lines)
    card = [c for c in sandbox.cards() if c["customer_ref"] == "c-1"][0]
    last4 = card["number"][-4:]
    assert f'  extracted: number="****{last4}", pin="***"' in lines
    assert lines[-2:] == ["NewStore gets HTTP 200",
                          f'  {{"identifier":{{"number":"****{last4}","pin":"***"}},"amount":{{"value":25,'
                          f'"currency":"USD"}},"idempotence_key":"k-1"}}']
    assert not _leaks(out, {card["number"], card["pin"], SANDBOX_KEY_FILE.read_text().strip()})


SHOPIFY = ROOT / "simulators" / "shopify"


@pytest.fixture(scope="module")
def shopify(tmp_path_factory):
    yield from start_simulator("simulators.shopify", tmp_path_factory)


def test_render_send_masks_a_gift_card_code_under_a_providers_own_name(shopify, tmp_path):
    """Shopify answers a new card as `giftCardCode`: not `number`, still a card number."""
    shopify.reset()
    config = write_config(tmp_path, {"shopify": {
        "mapping": str(ROOT / "mappings" / "shopify.yaml"), "vars": {"shop_url": shopify.url},
        "secrets": {"client_id": {"file": str(SHOPIFY / "shopify.client_id")},
                    "client_secret": {"file": str(SHOPIFY / "shopify.client_secret")}}, "inbound": "none"}})
    request = {"amount": {"value": 25, "currency": "USD"}, "customer": {"id": "c-1"}}
    result = gateway("render", "shopify", "issue", "-", "--send", "--config", str(config), cwd=tmp_path,
                     stdin=json.dumps(request))
    assert result.returncode == 0, result.stderr
    codes = {c.get("code") for c in shopify.cards()} - {None}
    assert codes, shopify.cards()
    secrets = codes | {(SHOPIFY / f"shopify.{n}").read_text().strip() for n in ("client_id", "client_secret")}
    assert not _leaks(result.stdout, secrets), result.stdout
    assert re.search(r'"giftCardCode":"\*\*\*\*\w{4}"', result.stdout), result.stdout


def test_render_shows_a_payment_operation_with_the_instrument_in_the_url(tmp_path):
    body = {"account_id": "a-1", "instrument_id": "hold_1", "idempotency_key": "k-1",
            "transactions": [{"transaction_id": "hold_1", "instrument_id": "hold_1", "capture_amount": 30,
                              "currency": "USD", "reason": "authorization"}],
            "arguments": {"amount": 20, "currency": "USD"}}
    lines = render(tmp_path, "capture", body)
    assert lines[2:4] == ["step capture", "  POST https://sandbox.test/v1/holds/hold_1/capture"]
    assert "  Idempotency-Key: k-1-capture" in lines and lines[-1] == '  {"amount_minor":2000}'
