"""The XML request messages the simulator reads, as element rules, and the ``/_sim/cards`` body.

Element names, nesting and restrictions follow Radial's (ex-GSI Commerce, ex-eBay Enterprise)
``checkout/1.0`` schema: ``Payment-Service-StoredValueBalance-1.0.xsd``, ``Payment-Datatypes-1.0.xsd``,
``Checkout-Datatypes-1.0.xsd`` and the docs.radial.com pages listed in README.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec

NS = "http://api.gsicommerce.com/schema/checkout/1.0"
AMOUNT = re.compile(r"^\d{1,12}(\.\d{1,2})?$")  # AmountBaseType: xsd:decimal, fractionDigits 2, >= 0
CURRENCIES = frozenset(
    "AUD BRL CAD CHF CNY DKK EUR GBP HKD JPY KRW MXN NOK NZD PLN SEK SGD USD".split()
)


@dataclass(frozen=True)
class Rule:
    """One child element: name, required, allowed attributes (name -> required), text length bounds."""

    name: str
    required: bool = True
    attributes: tuple[tuple[str, bool], ...] = ()
    min_length: int = 1
    max_length: int | None = None
    children: tuple[Rule, ...] = ()


PAN = Rule("PaymentAccountUniqueId", attributes=(("isToken", True),), max_length=22)
PAYMENT_CONTEXT = Rule("PaymentContext", children=(Rule("OrderId", max_length=20), PAN))
PIN = Rule("Pin", required=False, max_length=8)
AMOUNT_RULE = Rule("Amount", attributes=(("currencyCode", True),))


@dataclass(frozen=True)
class Message:
    root: str
    request_id: Literal["required", "optional"]
    children: tuple[Rule, ...]
    extra_root_attributes: tuple[str, ...] = ()


MESSAGES: dict[str, Message] = {
    "balance": Message(
        "StoredValueBalanceRequest", "optional", (PAN, PIN, Rule("CurrencyCode", min_length=3, max_length=3))
    ),
    "fundandactivate": Message(
        "StoredValueFundAndActivateRequest",
        "required",
        (PAYMENT_CONTEXT, PIN, AMOUNT_RULE, Rule("FundReason", required=False, max_length=100)),
    ),
    "cashout": Message("StoredValueCashOutRequest", "required", (PAYMENT_CONTEXT, PIN, AMOUNT_RULE)),
    "lookup": Message(
        "TenderTypeLookupRequest",
        "optional",
        (PAN, Rule("TenderClass"), Rule("CurrencyCode", min_length=3, max_length=3)),
        extra_root_attributes=("sessionId",),
    ),
}

# Documented alternatives the simulator does not implement (client-side encryption, virtual cards).
NOT_SIMULATED = frozenset({"EncryptedPaymentAccountUniqueId", "EncryptedPin", "PaymentContextBase"})


class SimCardRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``POST /_sim/cards``: adds or replaces a gift card (the simulator's own control format)."""

    pan: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{8,22}$")]
    tender_type: Literal["GS", "SP", "BH"]
    state: Literal["active", "inactive", "deactivated"]
    balance: Annotated[str, msgspec.Meta(pattern=r"^\d{1,12}(\.\d{1,2})?$")]
    currency: Literal["USD", "CAD"] = "USD"
    pin: Annotated[str, msgspec.Meta(min_length=1, max_length=8)] | None = None
    timeout: bool = False  # every operation on the card answers ResponseCode Timeout
