"""Bodies the simulator decodes with msgspec: the GraphQL envelope and the ``/_sim/cards`` control format.

The GraphQL ``variables`` themselves are coerced by the schema in ``app.py`` (see ``graphql.py``).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

Decimal2 = Annotated[str, msgspec.Meta(pattern=r"^\d{1,9}(\.\d{1,2})?$")]


class GraphQLBody(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /admin/api/{version}/graphql.json`` with ``Content-Type: application/json``.

    Extra top-level keys are ignored, as GraphQL servers commonly do.
    """

    query: str | None = None
    variables: Any = None
    operationName: str | None = None  # the GraphQL-over-HTTP field name


class SimGiftCardRequest(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``POST /_sim/cards``: adds or replaces (by code, case-insensitively) a gift card."""

    code: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9]{8,20}$")]
    balance: Decimal2
    initial_value: Decimal2 | None = None  # default: `balance`
    enabled: bool = True
    expires_on: Annotated[str, msgspec.Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] | None = None  # default: the shop's
    note: str | None = None
