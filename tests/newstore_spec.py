"""NewStore's Gift Card Provider Webhooks (v0), transcribed by hand for the tests.

These are the request examples and the 200/400 response schemas of the published OpenAPI
description, written here independently of ``gateway.contract`` so that a test can catch the
contract module drifting from the spec. (The project never reads the spec file itself.)
"""

from __future__ import annotations

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
