"""``gateway new PROVIDER``: a mapping and its test cases to start from, that lint clean and pass."""

from __future__ import annotations

from pathlib import Path

from .. import contracts
from ..compile.gateway_file import RESERVED_ROUTE_NAMES, is_route_name

MAPPING = """\
# yaml-language-server: $schema={schema}
# The {name} provider. Map each NewStore operation to calls of {name}'s API, one at a time:
# replace its `unsupported:` line with `steps:` and a `response:`. The language is documented in
# README.md ("The mapping language"); docs/tutorial.md walks through a whole mapping.
# Check it with `gateway lint {mapping}`, test it offline with `gateway test {tests}`.
description: {name} gift cards

base_url: "{{{{ vars.base_url }}}}"
timeout: 10

vars:
  base_url: null            # set per provider in gateway.yaml (providers.<route>.vars.base_url)

# secrets: [api_key]        # names whose values come from the environment, per provider
# auth: {{type: header, headers: {{X-Api-Key: api_key}}}}

operations:
  balance:
    unsupported: not mapped yet
  issue:
    unsupported: not mapped yet
  activate:
    unsupported: not mapped yet
  deactivate:
    unsupported: not mapped yet
  # Paying with a card (NewStore's payment provider webhooks): see "Payment operations" in the README.
  create_instrument:
    unsupported: not mapped yet
  capture:
    unsupported: not mapped yet
  refund:
    unsupported: not mapped yet
  revoke:
    unsupported: not mapped yet
"""

TESTS = """\
# Test cases for {mapping}, run offline by `gateway test {tests}`.
# Each case: NewStore's request, the provider's canned answer per step (`provider:`), the
# requests the mapping must send (`requests:`) and NewStore's expected response (`expect:`).
mapping: {mapping_name}
vars: {{base_url: https://{name}.test}}
secrets: {{}}

cases:
{cases}"""

CASE = """\
  - name: {operation} is not mapped yet
    operation: {operation}
    request: {request}
    expect:
      status: 400
      body: {expected}
      match: subset
"""
GIFT_CARD_UNSUPPORTED = "{error_code: unsupported_operation, request_accepted: false}"
PAYMENT_UNSUPPORTED = "{error_code: failed_command, details: {gateway_error: unsupported_operation}}"
_TX = '{transaction_id: t-1, instrument_id: i-1, capture_amount: 25, currency: USD, reason: authorization}'


REQUESTS = {
    "balance": '{identifier: {number: "6006491111111111", pin: "480163"}}',
    "issue": "{amount: {value: 25, currency: USD}, customer: {id: cust-1}, idempotence_key: key-1}",
    "activate": '{card_number: "6006495555555551", amount: {value: 40, currency: USD}, customer: {id: cust-1}}',
    "deactivate": '{card_number: "6006491111111111"}',
    "create_instrument": ("{account_id: a-1, idempotency_key: key-2, retry_id: r-1, arguments: {amount: 25, currency: USD, "
                          'payment_method: gift_card, instrument: {type: token, identifier: "6006491111111111"}}}'),
    "capture": f"{{account_id: a-1, instrument_id: i-1, transactions: [{_TX}], idempotency_key: key-3, "
               "arguments: {amount: 25, currency: USD}}",
    "refund": f"{{account_id: a-1, instrument_id: i-1, transactions: [{_TX}], idempotency_key: key-4, "
              "arguments: {amount: 0.01, currency: USD}}",
    "revoke": f"{{account_id: a-1, instrument_id: i-1, transactions: [{_TX}], idempotency_key: key-5}}",
}


class ScaffoldError(Exception):
    pass


def new(name: str, folder: Path, schema: str = "../docs/schema/mapping.schema.json") -> list[Path]:
    if not is_route_name(name):
        raise ScaffoldError(f"`{name}` cannot be a provider name: use lowercase letters, digits, `-` and `_`")
    if name in RESERVED_ROUTE_NAMES:
        raise ScaffoldError(f"`{name}` cannot be a provider name: the gateway serves /{name} itself")
    mapping = folder / f"{name}.yaml"
    tests = folder / f"{name}.test.yaml"
    for path in (mapping, tests):
        if path.exists():
            raise ScaffoldError(f"{path} already exists; not overwriting it")
    folder.mkdir(parents=True, exist_ok=True)
    cases = "".join(CASE.format(operation=op, request=req,
                                expected=PAYMENT_UNSUPPORTED if op in contracts.CONTRACTS["payment"].operations
                                else GIFT_CARD_UNSUPPORTED)
                    for op, req in REQUESTS.items())
    mapping.write_text(MAPPING.format(name=name, schema=schema, mapping=mapping, tests=tests))
    tests.write_text(TESTS.format(name=name, mapping=mapping, tests=tests, mapping_name=mapping.name, cases=cases))
    return [mapping, tests]
