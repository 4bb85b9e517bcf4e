"""Routes of the simulated Shopify Admin API (GraphQL gift cards, client credentials grant).

HTTP-level errors are Shopify's ``{"errors": "..."}`` (401 bad token, 404 unknown path or API
version...). Everything a GraphQL request gets wrong after authentication is answered with HTTP 200:
malformed or invalid GraphQL as top-level ``errors`` (``message``, ``locations``, ``extensions.code``),
business refusals as ``userErrors`` inside ``data``. Details per request: README.md.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import msgspec
from litestar import Request, Response, post

from simulators.simkit import (
    MAX_BODY_BYTES,
    ApiRequest,
    Dialect,
    Reply,
    ReplyError,
    SimApp,
    create_sim_app,
    media_type,
)

from . import graphql as gql
from .graphql import F, FieldError
from .schemas import GraphQLBody
from .state import (
    CODE_PATTERN,
    DEFAULT_SCOPES,
    DEFAULT_TOKEN_LIFETIME,
    GID_PREFIX,
    GiftCard,
    ShopifySimulator,
    cursor_for,
    cursor_number,
    money_text,
)

DEFAULT_API_VERSIONS = ("2025-07", "2025-10")
VERSION_FORMAT = re.compile(r"^\d{4}-(01|04|07|10)\Z")
TOKEN_PATH = "/admin/oauth/access_token"
INVALID_TOKEN = "[API] Invalid API key or access token (unrecognized login or wrong password)"
DEFAULT_MAX_INITIAL_VALUE = Decimal("10000.00")
MAX_PAGE_SIZE = 250
BUCKET = 2000.0
RESTORE_RATE = 100.0
RATE_LIMIT_DOCS = "https://shopify.dev/api/usage/rate-limits"
ACCESS_SCOPES_DOCS = "https://shopify.dev/api/usage/access-scopes"

# --- the schema subset -----------------------------------------------------------------------------

GIFT_CARD_ERROR_CODES = frozenset(
    "CUSTOMER_NOT_FOUND GIFT_CARD_LIMIT_EXCEEDED GREATER_THAN INTERNAL_ERROR INVALID MISSING_ARGUMENT "
    "RECIPIENT_NOT_FOUND TAKEN TOO_LONG TOO_SHORT".split()
)
CURRENCY_CODES = frozenset(
    "AED AUD BRL CAD CHF CNY CZK DKK EUR GBP HKD HUF ILS INR JPY KRW MXN MYR NOK NZD PHP PLN SEK SGD THB TWD "
    "USD ZAR".split()
)
# GiftCardTransactionUserErrorCode (giftCardDebit / giftCardCredit), as in the Admin schema.
GIFT_CARD_TRANSACTION_ERROR_CODES = frozenset(
    "GIFT_CARD_LIMIT_EXCEEDED GIFT_CARD_NOT_FOUND INSUFFICIENT_FUNDS INTERNAL_ERROR INVALID MISMATCHING_CURRENCY "
    "NEGATIVE_OR_ZERO_AMOUNT".split()
)
# ISO 4217 minor units of the currencies above that do not have 2 (money inputs may not have more).
ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW"})
SORT_KEYS = frozenset(
    "AMOUNT_SPENT BALANCE CODE CREATED_AT CUSTOMER_NAME DISABLED_AT EXPIRES_ON ID INITIAL_VALUE RELEVANCE "
    "UPDATED_AT".split()
)

GIFT_CARD = {
    "id": F("ID!"),
    "balance": F("MoneyV2!"),
    "initialValue": F("MoneyV2!"),
    "enabled": F("Boolean!"),
    "deactivatedAt": F("DateTime"),
    "expiresOn": F("Date"),
    "createdAt": F("DateTime!"),
    "updatedAt": F("DateTime!"),
    "lastCharacters": F("String!"),
    "maskedCode": F("String!"),
    "note": F("String"),
    "templateSuffix": F("String"),
    "customer": F("Customer"),
    "order": F("Order"),
    "recipientAttributes": F("GiftCardRecipient"),
}

# The GiftCardTransaction interface's fields, shared by GiftCardDebitTransaction and
# GiftCardCreditTransaction (metafields are opaque here: a transaction never has any).
GIFT_CARD_TRANSACTION = {
    "id": F("ID!"),
    "amount": F("MoneyV2!"),
    "giftCard": F("GiftCard!"),
    "note": F("String"),
    "processedAt": F("DateTime!"),
    "metafield": F("Metafield", namespace="String", key="String!"),
    "metafields": F(
        "MetafieldConnection!",
        namespace="String",
        keys="[String!]",
        first="Int",
        after="String",
        last="Int",
        before="String",
        reverse=("Boolean", False),
    ),
}

SCHEMA = gql.Schema(
    query="QueryRoot",
    mutation="Mutation",
    objects={
        "QueryRoot": {
            "giftCard": F("GiftCard", id="ID!"),
            "giftCards": F(
                "GiftCardConnection!",
                first="Int",
                last="Int",
                after="String",
                before="String",
                query="String",
                reverse=("Boolean", False),
                sortKey=("GiftCardSortKeys", "ID"),
                savedSearchId="ID",
            ),
            "shop": F("Shop!"),
        },
        "Mutation": {
            "giftCardCreate": F("GiftCardCreatePayload", input="GiftCardCreateInput!"),
            "giftCardDeactivate": F("GiftCardDeactivatePayload", id="ID!"),
            "giftCardDebit": F("GiftCardDebitPayload", id="ID!", debitInput="GiftCardDebitInput!"),
            "giftCardCredit": F("GiftCardCreditPayload", id="ID!", creditInput="GiftCardCreditInput!"),
        },
        "GiftCard": GIFT_CARD,
        "GiftCardConnection": {
            "nodes": F("[GiftCard!]!"),
            "edges": F("[GiftCardEdge!]!"),
            "pageInfo": F("PageInfo!"),
        },
        "GiftCardEdge": {"cursor": F("String!"), "node": F("GiftCard!")},
        "PageInfo": {
            "hasNextPage": F("Boolean!"),
            "hasPreviousPage": F("Boolean!"),
            "startCursor": F("String"),
            "endCursor": F("String"),
        },
        "MoneyV2": {"amount": F("Decimal!"), "currencyCode": F("CurrencyCode!")},
        "GiftCardCreatePayload": {
            "giftCard": F("GiftCard"),
            "giftCardCode": F("String"),
            "userErrors": F("[GiftCardUserError!]!"),
        },
        "GiftCardUserError": {
            "code": F("GiftCardErrorCode"),
            "field": F("[String!]"),
            "message": F("String!"),
        },
        "GiftCardDeactivatePayload": {
            "giftCard": F("GiftCard"),
            "userErrors": F("[GiftCardDeactivateUserError!]!"),
        },
        "GiftCardDeactivateUserError": {
            "code": F("GiftCardDeactivateUserErrorCode"),
            "field": F("[String!]"),
            "message": F("String!"),
        },
        "GiftCardDebitTransaction": GIFT_CARD_TRANSACTION,
        "GiftCardCreditTransaction": GIFT_CARD_TRANSACTION,
        "GiftCardDebitPayload": {
            "giftCardDebitTransaction": F("GiftCardDebitTransaction"),
            "userErrors": F("[GiftCardTransactionUserError!]!"),
        },
        "GiftCardCreditPayload": {
            "giftCardCreditTransaction": F("GiftCardCreditTransaction"),
            "userErrors": F("[GiftCardTransactionUserError!]!"),
        },
        "GiftCardTransactionUserError": {
            "code": F("GiftCardTransactionUserErrorCode"),
            "field": F("[String!]"),
            "message": F("String!"),
        },
        "Shop": {
            "id": F("ID!"),
            "name": F("String!"),
            "currencyCode": F("CurrencyCode!"),
            "myshopifyDomain": F("String!"),
        },
        # Opaque: any field may be selected; the simulator never has such objects, so they are null.
        "Customer": None,
        "Order": None,
        "GiftCardRecipient": None,
        "Metafield": None,
        "MetafieldConnection": None,
    },
    inputs={
        "GiftCardCreateInput": {
            "code": gql.parse_type("String"),
            "customerId": gql.parse_type("ID"),
            "expiresOn": gql.parse_type("Date"),
            "initialValue": gql.parse_type("Decimal!"),
            "note": gql.parse_type("String"),
            "recipientAttributes": gql.parse_type("GiftCardRecipientInput"),
            "templateSuffix": gql.parse_type("String"),
        },
        "GiftCardDebitInput": {
            "debitAmount": gql.parse_type("MoneyInput!"),
            "note": gql.parse_type("String"),
            "processedAt": gql.parse_type("DateTime"),
        },
        "GiftCardCreditInput": {
            "creditAmount": gql.parse_type("MoneyInput!"),
            "note": gql.parse_type("String"),
            "processedAt": gql.parse_type("DateTime"),
        },
        "MoneyInput": {
            "amount": gql.parse_type("Decimal!"),
            "currencyCode": gql.parse_type("CurrencyCode!"),
        },
        "GiftCardRecipientInput": {
            "id": gql.parse_type("ID!"),
            "message": gql.parse_type("String"),
            "preferredName": gql.parse_type("String"),
            "sendNotificationAt": gql.parse_type("DateTime"),
        },
    },
    enums={
        "GiftCardErrorCode": GIFT_CARD_ERROR_CODES,
        "GiftCardDeactivateUserErrorCode": frozenset({"GIFT_CARD_NOT_FOUND"}),
        "GiftCardTransactionUserErrorCode": GIFT_CARD_TRANSACTION_ERROR_CODES,
        "CurrencyCode": CURRENCY_CODES,
        "GiftCardSortKeys": SORT_KEYS,
    },
    scalars=dict(gql.BASE_SCALARS),
    literal_scalars={name: gql.base_literal(name) for name in gql.BASE_SCALARS},
    serializers={"Decimal": money_text},
)

# Root field -> the access scope it needs (shop needs none). giftCardDebit and giftCardCredit need
# `write_gift_card_transactions` (the mutation pages), not `write_gift_cards`.
REQUIRED_SCOPE = {"giftCard": "read_gift_cards", "giftCards": "read_gift_cards",
                  "giftCardCreate": "write_gift_cards", "giftCardDeactivate": "write_gift_cards",
                  "giftCardDebit": "write_gift_card_transactions",
                  "giftCardCredit": "write_gift_card_transactions"}


# --- HTTP-level errors (Shopify's {"errors": "..."}) ----------------------------------------------


def errors_reply(status: int, errors: Any, headers: dict[str, str] | None = None) -> Reply:
    return Reply.json(status, {"errors": errors}, {"X-Request-Id": secrets.token_hex(16), **(headers or {})})


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def throttled_body() -> dict[str, Any]:
    return {
        "errors": [
            {"message": "Throttled", "extensions": {"code": "THROTTLED", "documentation": RATE_LIMIT_DOCS}}
        ],
        "extensions": {
            "cost": {
                "requestedQueryCost": 10,
                "actualQueryCost": None,
                "throttleStatus": {"maximumAvailable": BUCKET, "currentlyAvailable": 0, "restoreRate": RESTORE_RATE},
            }
        },
    }


class ShopifyDialect(Dialect):
    """``X-Shopify-Access-Token`` on every Admin API call (the token endpoint excepted)."""

    def __init__(self, sim: ShopifySimulator, throttle_status: int) -> None:
        self._sim = sim
        self._throttle_status = throttle_status

    def check(self, request: ApiRequest) -> Reply | None:
        if request.path == TOKEN_PATH:
            return None
        token = request.header("x-shopify-access-token")
        if token is None or self._sim.valid_token(token) is None:
            return errors_reply(401, INVALID_TOKEN)
        return None

    def fault(self, status: int) -> Reply:
        if status == 429:
            # GraphQL throttling is a THROTTLED error in the body (HTTP 200 by default: see README).
            return Reply.json(self._throttle_status, throttled_body(), {"Retry-After": "1.0"})
        return errors_reply(status, _phrase(status))

    def too_large(self, limit: int) -> Reply:
        return errors_reply(413, _phrase(413))

    def http_error(self, status: int, detail: str) -> Reply:
        if status == 404:
            return errors_reply(404, "Not Found")
        return errors_reply(status, _phrase(status))

    def internal_error(self) -> Reply:
        return errors_reply(500, _phrase(500))


# --- the token endpoint ----------------------------------------------------------------------------


def _oauth_error(status: int, code: str, description: str) -> ReplyError:
    return ReplyError(Reply.json(status, {"error": code, "error_description": description}))


@post(TOKEN_PATH, status_code=200)
async def access_token(request: Request[Any, Any, Any], sim: ShopifySimulator) -> Response[bytes]:
    kind = media_type(request.headers.get("content-type"))
    raw = await request.body()
    fields: dict[str, Any]
    try:
        if kind == "application/x-www-form-urlencoded":
            fields = dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw)))
        elif kind == "application/json":
            fields = msgspec.json.decode(raw) if raw.strip() else {}
            if not isinstance(fields, dict):
                raise ValueError
        else:
            raise _oauth_error(400, "invalid_request", "Send the parameters form-encoded (or as a JSON object)")
    except (ValueError, UnicodeDecodeError, msgspec.DecodeError):
        raise _oauth_error(400, "invalid_request", "The request body could not be parsed") from None
    config: _Config = request.app.state.shopify_config
    grant_type, client_id, client_secret = (fields.get(k) for k in ("grant_type", "client_id", "client_secret"))
    if not all(isinstance(v, str) and v for v in (grant_type, client_id, client_secret)):
        raise _oauth_error(400, "invalid_request", "grant_type, client_id and client_secret are required")
    if grant_type != "client_credentials":
        raise _oauth_error(400, "unsupported_grant_type", f"Unsupported grant_type: {grant_type}")
    id_ok = hmac.compare_digest(str(client_id).encode(), config.client_id.encode())
    secret_ok = hmac.compare_digest(str(client_secret).encode(), config.client_secret.encode())
    if not (id_ok and secret_ok):
        raise _oauth_error(401, "invalid_client", "Client authentication failed")
    async with sim.lock:
        token = sim.issue_token()
    return Response(msgspec.json.encode(token), status_code=200, media_type="application/json")


# --- gift card search (the `query` argument of giftCards) ------------------------------------------

SEARCH_FIELDS = {"balance_status", "created_at", "customer_id", "expires_on", "id", "initial_value",
                 "recipient_id", "source", "status", "updated_at", "code"}


@dataclass(frozen=True)
class Term:
    field: str | None  # None: the default (free text) field
    value: str
    negated: bool


_SEARCH_WORD = re.compile(r'(?:[^\s"]+|"[^"]*")+|"[^"]*$')


def parse_search(query: str) -> tuple[list[list[Term]], list[dict[str, str]]]:
    """Groups of ANDed terms, ORed together; plus Shopify-style warnings for unknown fields."""
    # Words, where a quoted part may hold spaces (`title:"gift card"`); linear in the query's
    # length (shlex.split needed 10 s for a 1 MB query).
    words = [w.replace('"', "") for w in _SEARCH_WORD.findall(query)]
    groups: list[list[Term]] = [[]]
    warnings: list[dict[str, str]] = []
    for word in words:
        if word == "OR":
            groups.append([])
            continue
        if word in ("AND", ""):
            continue
        negated = word.startswith("-") and len(word) > 1
        word = word[1:] if negated else word
        name, sep, value = word.partition(":")
        if not sep:
            groups[-1].append(Term(None, word, negated))
        elif name not in SEARCH_FIELDS:
            warnings.append({"field": name, "message": "Invalid search field for this query."})
        else:
            groups[-1].append(Term(name, value, negated))
    return [group for group in groups if group] or [[]], warnings


def _compare(actual: Any, expression: str, convert: Any) -> bool:
    match = re.fullmatch(r"(<=|>=|<|>)?(.*)", expression)
    assert match is not None
    op, raw = match.group(1), match.group(2)
    try:
        wanted = convert(raw)
    except (ValueError, ArithmeticError):
        return False
    if actual is None:
        return False
    return {"<": actual < wanted, "<=": actual <= wanted, ">": actual > wanted, ">=": actual >= wanted}.get(
        op or "", actual == wanted
    )


def _term_matches(term: Term, card: GiftCard, today: date) -> bool:
    value = term.value
    if term.field in (None, "code"):
        result = card.code.casefold() == value.casefold()
    elif term.field == "status":
        states = {
            "enabled": card.enabled,
            "disabled": not card.enabled,
            "expired": card.expired(today),
            "expiring": card.expires_on is not None and not card.expired(today),
        }
        result = states.get(value.lower(), False)
    elif term.field == "balance_status":
        states = {
            "full": card.balance == card.initial,
            "partial": Decimal(0) < card.balance < card.initial,
            "empty": card.balance == 0,
            "full_or_partial": card.balance > 0,
        }
        result = states.get(value.lower(), False)
    elif term.field == "id":
        result = _compare(card.number, value.removeprefix(GID_PREFIX), int)
    elif term.field == "initial_value":
        result = _compare(card.initial, value, Decimal)
    elif term.field in ("created_at", "updated_at"):
        result = _compare(getattr(card, term.field)[: len(value.lstrip("<>="))], value, str)
    elif term.field == "expires_on":
        result = _compare(card.expires_on, value, str)
    elif term.field == "source":
        result = value.lower() == ("manual" if card.number < 2000 else "api_client")
    else:  # customer_id, recipient_id: the simulator has neither
        result = False
    return result != term.negated


SORTERS = {
    "BALANCE": lambda card: card.balance,
    "CREATED_AT": lambda card: card.created_at,
    "UPDATED_AT": lambda card: card.updated_at,
    "EXPIRES_ON": lambda card: card.expires_on or "9999-12-31",
    "INITIAL_VALUE": lambda card: card.initial,
    "CODE": lambda card: card.code.casefold(),
}


# --- resolvers -------------------------------------------------------------------------------------


@dataclass
class _Config:
    client_id: str
    client_secret: str
    versions: frozenset[str]
    max_initial_value: Decimal
    shop_name: str


class Resolvers:
    """The root fields of one GraphQL request (holds the search extension it may produce)."""

    def __init__(self, sim: ShopifySimulator, config: _Config) -> None:
        self.sim = sim
        self.config = config
        self.search: list[dict[str, Any]] = []
        self.cost = 0

    def table(self) -> dict[str, gql.Resolver]:
        return {
            "giftCard": self.gift_card,
            "giftCards": self.gift_cards,
            "shop": self.shop,
            "giftCardCreate": self.gift_card_create,
            "giftCardDeactivate": self.gift_card_deactivate,
            "giftCardDebit": lambda args: self.gift_card_transaction(args, "debit"),
            "giftCardCredit": lambda args: self.gift_card_transaction(args, "credit"),
        }

    def shop(self, args: dict[str, Any]) -> dict[str, Any]:
        self.cost += 1
        return {
            "id": "gid://shopify/Shop/1",
            "name": self.config.shop_name,
            "currencyCode": self.sim.currency,
            "myshopifyDomain": f"{self.config.shop_name}.myshopify.com",
        }

    def gift_card(self, args: dict[str, Any]) -> dict[str, Any] | None:
        self.cost += 1
        gid = args["id"]
        if not re.fullmatch(r"gid://shopify/[A-Za-z]+/\d+", gid):
            raise FieldError(f"Invalid global id '{gid}'",
                             {"code": "argumentLiteralsIncompatible", "typeName": "CoercionError"})
        card = self.sim.by_gid(gid)
        return card.graphql() if card else None

    def gift_cards(self, args: dict[str, Any]) -> dict[str, Any]:
        first, last = args.get("first"), args.get("last")
        if first is None and last is None:
            raise FieldError("you must provide one of first or last")
        if first is not None and last is not None:
            raise FieldError("Passing both `first` and `last` to paginate the `giftCards` connection is not supported.")
        size = first if first is not None else last
        assert size is not None
        if size < 0 or size > MAX_PAGE_SIZE:
            raise FieldError(f"`{'first' if first is not None else 'last'}` must be between 0 and {MAX_PAGE_SIZE}")
        cards = list(self.sim.cards.values())
        if args.get("query"):
            groups, warnings = parse_search(args["query"])
            today = datetime.now(UTC).date()
            cards = [c for c in cards if any(all(_term_matches(t, c, today) for t in g) for g in groups)]
            entry: dict[str, Any] = {"path": ["giftCards"], "query": args["query"]}
            if warnings:
                entry["warnings"] = warnings
            self.search.append(entry)
        sort_key = args.get("sortKey") or "ID"
        cards.sort(key=SORTERS.get(sort_key, lambda card: card.number))
        if sort_key in SORTERS:  # stable tie-break by ID
            cards.sort(key=lambda card: (SORTERS[sort_key](card), card.number))
        if args.get("reverse"):
            cards.reverse()
        for name, keep in (("after", lambda i, at: i > at), ("before", lambda i, at: i < at)):
            cursor = args.get(name)
            if cursor is None:
                continue
            number = cursor_number(cursor)
            positions = [i for i, card in enumerate(cards) if card.number == number]
            if number is None or not positions:
                raise FieldError(f"Invalid cursor for current pagination sort ({name}).")
            at = positions[0]
            cards = [card for i, card in enumerate(cards) if keep(i, at)]
        total = len(cards)
        page = cards[:size] if first is not None else cards[max(total - size, 0) :]
        self.cost += 2 + len(page)
        edges = [{"cursor": cursor_for(card), "node": card.graphql()} for card in page]
        return {
            "nodes": [edge["node"] for edge in edges],
            "edges": edges,
            "pageInfo": {
                "hasNextPage": first is not None and total > size or bool(args.get("before")),
                "hasPreviousPage": last is not None and total > size or bool(args.get("after")),
                "startCursor": edges[0]["cursor"] if edges else None,
                "endCursor": edges[-1]["cursor"] if edges else None,
            },
        }

    def gift_card_create(self, args: dict[str, Any]) -> dict[str, Any]:
        self.cost += 10
        spec: dict[str, Any] = args["input"]
        errors: list[dict[str, Any]] = []

        def user_error(code: str, field: list[str], message: str) -> None:
            errors.append({"code": code, "field": ["input", *field], "message": message})

        initial: Decimal = spec["initialValue"]
        if initial <= 0:
            user_error("GREATER_THAN", ["initialValue"], "Initial value must be greater than 0")
        elif initial.as_tuple().exponent < -2:  # type: ignore[operator]
            user_error("INVALID", ["initialValue"], "Initial value must have at most 2 decimal places")
        elif initial > self.config.max_initial_value:
            user_error("GIFT_CARD_LIMIT_EXCEEDED", ["initialValue"],
                       f"Initial value must be less than or equal to {money_text(self.config.max_initial_value)}")
        code = spec.get("code")
        if code is not None:
            if len(code) < 8:
                user_error("TOO_SHORT", ["code"], "Code is too short (minimum is 8 characters)")
            elif len(code) > 20:
                user_error("TOO_LONG", ["code"], "Code is too long (maximum is 20 characters)")
            elif not CODE_PATTERN.fullmatch(code):
                user_error("INVALID", ["code"], "Code can only contain letters(a-z) and numbers(0-9)")
            elif self.sim.by_code(code) is not None:
                user_error("TAKEN", ["code"], "Code has already been taken")
        expires_on = spec.get("expiresOn")
        if expires_on is not None and date.fromisoformat(expires_on) <= datetime.now(UTC).date():
            user_error("INVALID", ["expiresOn"], "Expires on must be in the future")
        if spec.get("customerId") is not None:
            user_error("CUSTOMER_NOT_FOUND", ["customerId"], "Customer could not be found")
        if spec.get("recipientAttributes") is not None:
            user_error("RECIPIENT_NOT_FOUND", ["recipientAttributes", "id"], "Recipient could not be found")
        if errors:
            return {"giftCard": None, "giftCardCode": None, "userErrors": errors}
        card, full_code = self.sim.create(code, initial, spec.get("note"), expires_on, spec.get("templateSuffix"))
        return {"giftCard": card.graphql(), "giftCardCode": full_code, "userErrors": []}

    def gift_card_deactivate(self, args: dict[str, Any]) -> dict[str, Any]:
        self.cost += 10
        card = self.sim.by_gid(args["id"])
        if card is None:
            return {
                "giftCard": None,
                "userErrors": [{"code": "GIFT_CARD_NOT_FOUND", "field": ["id"], "message": "Gift card not found"}],
            }
        self.sim.deactivate(card)
        return {"giftCard": card.graphql(), "userErrors": []}

    def gift_card_transaction(self, args: dict[str, Any], kind: str) -> dict[str, Any]:
        """``giftCardDebit`` / ``giftCardCredit``: checks in a fixed order, the first failure is the only userError."""
        self.cost += 10
        input_name, amount_name = ("debitInput", "debitAmount") if kind == "debit" else ("creditInput", "creditAmount")
        payload_key = "giftCardDebitTransaction" if kind == "debit" else "giftCardCreditTransaction"

        def refuse(code: str, field: list[str], message: str) -> dict[str, Any]:
            return {payload_key: None, "userErrors": [{"code": code, "field": field, "message": message}]}

        spec: dict[str, Any] = args[input_name]
        money: dict[str, Any] = spec[amount_name]
        amount: Decimal = money["amount"]
        currency: str = money["currencyCode"]
        amount_field = [input_name, amount_name, "amount"]
        card = self.sim.by_gid(args["id"])
        if card is None:
            return refuse("GIFT_CARD_NOT_FOUND", ["id"], "The gift card could not be found.")
        if amount <= 0:
            return refuse("NEGATIVE_OR_ZERO_AMOUNT", amount_field, "A positive amount must be used.")
        places = 0 if currency in ZERO_DECIMAL_CURRENCIES else 2
        if amount.as_tuple().exponent < -places:  # type: ignore[operator]
            return refuse("INVALID", amount_field, f"Amount must have at most {places} decimal places.")
        if currency != card.currency:
            return refuse("MISMATCHING_CURRENCY", [input_name, amount_name, "currencyCode"],
                          "The currency provided does not match the currency of the gift card.")
        now = datetime.now(UTC)
        processed_at = now
        if spec.get("processedAt") is not None:
            processed_at = datetime.fromisoformat(spec["processedAt"])
            if processed_at.tzinfo is None:
                processed_at = processed_at.replace(tzinfo=UTC)
            if processed_at > now:
                return refuse("INVALID", [input_name, "processedAt"], "Processed at must not be in the future.")
        if not card.enabled:
            return refuse("INVALID", ["id"], "The gift card is deactivated.")
        if card.expired(now.date()):
            return refuse("INVALID", ["id"], "The gift card has expired.")
        if kind == "debit" and amount > card.balance:
            return refuse("INSUFFICIENT_FUNDS", amount_field,
                          "The gift card does not have sufficient funds to satisfy the request.")
        if kind == "credit" and card.balance + amount > self.config.max_initial_value:
            return refuse("GIFT_CARD_LIMIT_EXCEEDED", amount_field,
                          f"The gift card's balance cannot exceed {money_text(self.config.max_initial_value)}.")
        transaction = self.sim.transact(card, kind, amount, spec.get("note"),
                                        processed_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        return {payload_key: transaction, "userErrors": []}


# --- the GraphQL endpoint --------------------------------------------------------------------------


def _graphql_response(payload: dict[str, Any], version: str) -> Response[bytes]:
    headers = {"X-Shopify-API-Version": version, "X-Request-Id": secrets.token_hex(16)}
    return Response(msgspec.json.encode(payload), status_code=200, media_type="application/json", headers=headers)


def _read_body(request: Request[Any, Any, Any], raw: bytes) -> tuple[str, Any, str | None]:
    kind = media_type(request.headers.get("content-type"))
    missing = ReplyError(errors_reply(400, {"query": "Required parameter missing or invalid"}))
    if kind == "application/graphql":
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise missing from None
        if not text.strip():
            raise missing
        return text, None, None
    if kind != "application/json":
        raise missing
    try:
        body = msgspec.json.decode(raw, type=GraphQLBody)
    except msgspec.DecodeError:
        raise ReplyError(errors_reply(400, "Bad Request")) from None
    if not body.query or not body.query.strip():
        raise missing
    return body.query, body.variables, body.operationName


@post("/admin/api/{version:str}/graphql.json", status_code=200)
async def graphql_endpoint(request: Request[Any, Any, Any], sim: ShopifySimulator, version: str) -> Response[bytes]:
    config: _Config = request.app.state.shopify_config
    if version not in config.versions:
        raise ReplyError(errors_reply(404, "Not Found"))
    query, variables, operation_name = _read_body(request, await request.body())
    token = sim.valid_token(request.headers.get("x-shopify-access-token", ""))
    scopes = token.scopes if token else frozenset()
    try:
        prepared = gql.prepare(SCHEMA, query, variables, operation_name)
    except gql.ValidationErrors as exc:
        return _graphql_response({"errors": [error.to_dict() for error in exc.errors]}, version)

    def check_access(name: str, node: gql.FieldNode) -> None:
        needed = REQUIRED_SCOPE.get(name)
        if needed is not None and needed not in scopes:
            required = f"`{needed}` access scope."
            raise FieldError(f"Access denied for {name} field. Required access: {required}",
                             {"code": "ACCESS_DENIED", "documentation": ACCESS_SCOPES_DOCS,
                              "requiredAccess": required})

    resolvers = Resolvers(sim, config)
    async with sim.lock:
        data, errors = gql.execute(SCHEMA, prepared, resolvers.table(), check_access)
    cost = max(resolvers.cost, 1)
    payload: dict[str, Any] = {}
    if errors:
        payload["errors"] = [error.to_dict() for error in errors]
    payload["data"] = data
    extensions: dict[str, Any] = {
        "cost": {
            "requestedQueryCost": cost,
            "actualQueryCost": cost,
            "throttleStatus": {
                "maximumAvailable": BUCKET,
                "currentlyAvailable": int(BUCKET - cost),
                "restoreRate": RESTORE_RATE,
            },
        }
    }
    if resolvers.search:
        extensions["search"] = resolvers.search
    payload["extensions"] = extensions
    return _graphql_response(payload, version)


# --- app -------------------------------------------------------------------------------------------


def create_app(
    admin_token: str,
    *,
    client_id: str,
    client_secret: str,
    api_versions: Iterable[str] = DEFAULT_API_VERSIONS,
    currency: str = "USD",
    scopes: Iterable[str] = DEFAULT_SCOPES,
    token_lifetime: int = DEFAULT_TOKEN_LIFETIME,
    max_initial_value: Decimal = DEFAULT_MAX_INITIAL_VALUE,
    throttle_status: int = 200,
    shop_name: str = "sim-shop",
) -> SimApp:
    """A fresh Shopify simulator with its own gift cards.

    ``admin_token`` is a static ``X-Shopify-Access-Token`` that never expires; ``client_id`` and
    ``client_secret`` are exchanged at ``POST /admin/oauth/access_token`` for tokens living
    ``token_lifetime`` seconds. Every token has ``scopes``. ``api_versions`` are the accepted
    ``{version}`` path segments. ``throttle_status`` is the HTTP status of a queued 429 fault's
    THROTTLED answer (200 by default; 429 also seen in the wild).
    """
    versions = frozenset(api_versions)
    if not admin_token or not client_id or not client_secret:
        raise ValueError("admin_token, client_id and client_secret must not be empty")
    if not versions or any(not VERSION_FORMAT.match(v) for v in versions):
        raise ValueError("API versions look like YYYY-01, YYYY-04, YYYY-07 or YYYY-10")
    if currency not in CURRENCY_CODES:
        raise ValueError(f"unsupported currency {currency!r}")
    if throttle_status not in (200, 429):
        raise ValueError("throttle_status must be 200 or 429")
    sim = ShopifySimulator(admin_token, currency, tuple(scopes), token_lifetime)
    app = create_sim_app(
        core=sim,
        dialect=ShopifyDialect(sim, throttle_status),
        route_handlers=[access_token, graphql_endpoint],
        logger_name="simulators.shopify",
        masked_headers=("x-shopify-access-token", "authorization"),
        max_body_bytes=MAX_BODY_BYTES,
    )
    app.state.shopify_config = _Config(client_id, client_secret, versions, max_initial_value, shop_name)
    return app
