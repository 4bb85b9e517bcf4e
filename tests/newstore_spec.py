"""NewStore's Gift Card Provider Webhooks (v0), transcribed by hand for the tests.

These are the request examples and the 200/400 response schemas of the published OpenAPI
description, written here independently of ``gateway.contracts`` so that a test can catch the
contract module drifting from the spec. (The project never reads the spec file itself.)
"""

from __future__ import annotations

import decimal
import json

import jsonschema

MONEY = {
    "type": "object",
    "required": ["value", "currency"],
    "properties": {
        "value": {"type": "number", "minimum": 0},
        "currency": {"type": "string", "minLength": 3, "maxLength": 3},
    },
}
IDENTIFIER = {
    "type": "object",
    "required": ["number"],
    "properties": {"number": {"type": "string", "minLength": 1}, "pin": {"type": "string"}},
}
CUSTOMER = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string", "minLength": 1},
        "email": {"type": "string"},
        "name": {"type": "string"},
        "greeting_name": {"type": "string"},
    },
}

RESPONSES = {
    "balance": MONEY,
    "issue": {
        "type": "object",
        "required": ["identifier"],
        "properties": {
            "identifier": IDENTIFIER,
            "customer": CUSTOMER,
            "metadata": {"type": "object"},
            "amount": MONEY,
            "idempotence_key": {"type": "string"},
        },
    },
    "activate": {
        "type": "object",
        "required": ["identifier"],
        "properties": {"identifier": IDENTIFIER, "metadata": {"type": "object"}},
    },
    "deactivate": {
        "type": "object",
        "properties": {"deactivated_at": {"type": "string", "format": "date-time"}},
    },
}

ERROR = {
    "type": "object",
    "required": ["error_code", "message", "request_accepted"],
    "properties": {
        "error_code": {"type": "string"},
        "message": {"type": "string"},
        "details": {"type": "object"},
        "request_accepted": {"type": "boolean"},
    },
}

# The spec's own request examples (operation -> body).
EXAMPLES = {
    "balance": {"identifier": {"number": "5h78k5367h09q34n22", "pin": "4125"}, "metadata": {"store_id": "some-store-identifier"}},
    "issue": {
        "amount": {"value": 100, "currency": "USD"},
        "customer": {"id": "34683bfjbfjbdfkbfk", "name": "Jay DoubleYou"},
        "idempotence_key": "5kl5345b2hjj5k79",
    },
    "activate": {
        "card_number": "5h78k5367h09q34n22",
        "amount": {"value": 100, "currency": "USD"},
        "customer": {"id": "64810476", "email": "jay_doubleyou@example.com", "name": "Jay Doubleyou"},
        "idempotence_key": "6234h6k263bb589v0bnv3",
    },
    "deactivate": {
        "card_number": "5h78k5367h09q34n22",
        "pin": "1043",
        "store_id": "842840192840129841092",
        "idempotence_key": "6234h6k263bb589v0bnv3",
    },
}


def check_response(operation: str, body: object) -> None:
    """Raise if ``body`` is not a valid 200 body of ``operation`` under the spec."""
    jsonschema.validate(body, RESPONSES[operation], format_checker=jsonschema.FormatChecker())


def check_error(body: object) -> None:
    jsonschema.validate(body, ERROR)


# --- NewStore's Payment Provider Webhooks (v0), transcribed by hand ---------------------------

PSP_ERROR_CODES = ["internal_error", "retry_error", "instrument_error", "fraud_error", "rate_limit",
                   "failed_command", "psp_api_error"]
PSP_TRANSACTION = {
    "type": "object",
    "required": ["transaction_id", "instrument_id", "currency"],
    "properties": {
        "transaction_id": {"type": "string", "minLength": 1},
        "instrument_id": {"type": "string", "minLength": 1},
        "capture_amount": {"type": "number", "multipleOf": 0.01},
        "refund_amount": {"type": "number", "multipleOf": 0.01},
        "currency": {"type": "string", "minLength": 3, "maxLength": 3},
        "reason": {"type": "string", "enum": ["authorization", "revoke", "refund", "capture"]},
        "metadata": {"type": "object"},
        "payment_method": {"type": "string"},
        "payment_wallet": {"type": "string"},
        "created_at": {"type": "string", "format": "date-time"},
        "processed_at": {"type": "string", "format": "date-time"},
    },
}
PSP_RESPONSE = {"type": "array", "items": PSP_TRANSACTION}
PSP_ERROR = {
    "type": "object",
    "required": ["error_code", "message"],
    "properties": {
        "error_code": {"type": "string", "enum": PSP_ERROR_CODES, "minLength": 1},
        "message": {"type": "string", "minLength": 1},
        "details": {"type": "object"},
    },
}
_AUTHORIZATION = {
    "payment_method": "credit_card", "payment_wallet": "Apple Pay", "instrument_id": "0987-6543-2121-2321",
    "transaction_id": "unique-for-every-transaction-in-this payload-authorized-12345", "capture_amount": 100,
    "refund_amount": 0, "currency": "USD", "reason": "authorization",
    "metadata": {"essential": {"instrument_metadata": {"card_brand": "Visa", "card_last4": "0000",
                                                       "gift_card_number": "1234567890"}}},
}
PSP_EXAMPLES = {
    "create_instrument": {
        "account_id": "9c849222-3bca-4881-9c68-2e91da34ab21",
        "idempotency_key": "authorized.987600036172980-9c849222-3bca-4881-9c68-2e91da34ab21",
        "retry_id": "e0b5c1d2-9d0b-4e59-8f7a-2a1c3b4d5e6f",
        "arguments": {"amount": 100, "currency": "USD", "payment_method": "credit_card",
                      "instrument": {"identifier": "unique-psp-instrument-identifier-1234567890", "type": "authorized"}},
        "metadata": {},
    },
    "capture": {
        "account_id": "af8e9f4a-b6ec-4677-a9a0-1ff199a8b2ef",
        "instrument_id": "unique-psp-instrument-identifier-1234567890",
        "transactions": [_AUTHORIZATION],
        "idempotency_key": "373fa237-d70e-4177-8139-41354a21c356",
        "arguments": {"amount": 100, "currency": "USD"},
        "metadata": {},
    },
    "refund": {
        "account_id": "af8e9f4a-b6ec-4677-a9a0-1ff199a8b2ef",
        "instrument_id": "unique-psp-instrument-identifier-1234567890",
        "transactions": [_AUTHORIZATION, {**_AUTHORIZATION, "transaction_id": "capture-1", "capture_amount": -100,
                                          "refund_amount": 100, "reason": "capture"}],
        "idempotency_key": "d7b6f3c2-1a2b-4c3d-8e9f-0a1b2c3d4e5f",
        "arguments": {"amount": 100, "currency": "USD"},
        "metadata": {"original_operation": "refund"},
    },
    "revoke": {
        "account_id": "af8e9f4a-b6ec-4677-a9a0-1ff199a8b2ef",
        "instrument_id": "unique-psp-instrument-identifier-1234567890",
        "transactions": [_AUTHORIZATION],
        "idempotency_key": "5f0c3a8e-7b6d-4e1f-9a2b-3c4d5e6f7a8b",
        "metadata": {},
    },
}


def check_psp_response(body: object) -> None:
    # Amounts are checked as exact decimals: in floats 19.99 is not a multiple of 0.01.
    exact = json.loads(json.dumps(body), parse_float=decimal.Decimal)
    jsonschema.validate(exact, _EXACT_PSP_RESPONSE, format_checker=jsonschema.FormatChecker())


def _exact_multiples(schema: object) -> object:
    if isinstance(schema, dict):
        return {k: decimal.Decimal(str(v)) if k == "multipleOf" else _exact_multiples(v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_exact_multiples(v) for v in schema]
    return schema


_EXACT_PSP_RESPONSE = _exact_multiples(PSP_RESPONSE)


def check_psp_error(body: object) -> None:
    jsonschema.validate(body, PSP_ERROR)
