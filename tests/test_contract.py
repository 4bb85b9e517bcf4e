"""The contract module against NewStore's spec, field by field.

The schema msgspec emits from ``gateway.contracts`` Structs is compared with the spec's schema
as transcribed in ``newstore_spec``: same required fields, same property names, same types and
constraints. A drift in either direction fails here.
"""

from __future__ import annotations

import msgspec
import pytest

from gateway import contracts
from gateway.contracts import giftcard

from .newstore_spec import ERROR, EXAMPLES, RESPONSES


def _resolve(schema: dict, defs: dict) -> dict:
    if "$ref" in schema:
        return defs[schema["$ref"].rsplit("/", 1)[1]]
    if "anyOf" in schema:  # Optional[X] -> X
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        if len(options) == 1:
            return _resolve(options[0], defs)
    return schema


def _compare(emitted: dict, spec: dict, defs: dict, where: str) -> None:
    emitted = _resolve(emitted, defs)
    if spec.get("type") == "object" and "properties" in spec:
        assert set(emitted.get("required", [])) == set(spec.get("required", [])), where
        assert set(emitted["properties"]) == set(spec["properties"]), where
        for name, sub in spec["properties"].items():
            _compare(emitted["properties"][name], sub, defs, f"{where}.{name}")
        return
    if spec.get("type") == "number":
        return  # `value` is Any in the Struct and checked as a number >= 0 in __post_init__ (tested below)
    if spec.get("type") == "string" and spec.get("format") == "date-time":
        # msgspec emits datetimes as plain strings; the RFC 3339 check is tested below.
        assert emitted.get("type") == "string", where
        return
    assert emitted.get("type") == spec["type"], where
    for key in ("minLength", "maxLength"):
        assert emitted.get(key) == spec.get(key), f"{where}: {key}"


@pytest.mark.parametrize("operation", list(RESPONSES))
def test_response_structs_match_the_spec(operation):
    (emitted,), defs = msgspec.json.schema_components([contracts.OPERATIONS[operation].response_type])
    _compare(emitted, RESPONSES[operation], defs, operation)


def test_error_struct_matches_the_spec():
    (emitted,), defs = msgspec.json.schema_components([giftcard.ErrorBody])
    _compare(emitted, ERROR, defs, "error")


@pytest.mark.parametrize("operation", list(EXAMPLES))
def test_spec_examples_decode(operation):
    request = contracts.decode_request(operation, msgspec.json.encode(EXAMPLES[operation]))
    assert type(request) is contracts.OPERATIONS[operation].request_type


def test_amounts_decode_as_exact_decimals():
    request = contracts.decode_request("issue", b'{"amount": {"value": 0.1, "currency": "USD"}, "customer": {"id": "c"}}')
    assert str(request.amount.value) == "0.1"


@pytest.mark.parametrize(("data", "message"), [
    ({"value": -1, "currency": "USD"}, "`value` must be a number >= 0"),
    ({"value": "1", "currency": "USD"}, "`value` must be a number, got string"),
    ({"value": 1, "currency": "US"}, "Expected `str` of length >= 3 - at `$.currency`"),
])
def test_responses_are_validated_before_they_leave(data, message):
    with pytest.raises(msgspec.ValidationError) as info:
        contracts.build_response("balance", data)
    assert message in str(info.value)


def test_deactivated_at_must_be_an_rfc3339_time_with_zone():
    assert contracts.build_response("deactivate", {"deactivated_at": "2023-12-31T10:11:17Z"})
    with pytest.raises(msgspec.ValidationError, match="Invalid RFC3339"):
        contracts.build_response("deactivate", {"deactivated_at": "yesterday"})
    with pytest.raises(msgspec.ValidationError, match="timezone"):
        contracts.build_response("deactivate", {"deactivated_at": "2023-12-31T10:11:17"})
