"""The hand-written NewStore schemas the tests check answers against are themselves right."""

import jsonschema
import pytest

from tests.newstore_spec import check_psp_response

TRANSACTION = {"transaction_id": "t-1", "instrument_id": "i-1", "capture_amount": 0, "refund_amount": 0,
               "currency": "USD", "reason": "authorization", "payment_method": "gift_card",
               "created_at": "2026-11-26T00:00:00Z"}


@pytest.mark.parametrize("amount", [19.99, 0.07, 0.29, 1.15, -12.34, 100])
def test_amounts_in_cents_pass_as_exact_decimals(amount):
    check_psp_response([{**TRANSACTION, "capture_amount": amount}])  # in floats 0.07 % 0.01 != 0


@pytest.mark.parametrize("amount", [19.995, 0.001])
def test_fractions_of_a_cent_are_refused(amount):
    with pytest.raises(jsonschema.ValidationError):
        check_psp_response([{**TRANSACTION, "refund_amount": amount}])
