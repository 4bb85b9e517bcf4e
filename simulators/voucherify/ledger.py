"""Redemptions, rollbacks and voucher transactions of the simulated Voucherify project.

Sources (voucherifyio/voucherify-openapi): ``reference/readonly-sdks/python/OpenAPI.json`` (the
``Redemption``, ``RedemptionRollback``, ``RedemptionsRedeemResponseBody``,
``RedemptionsListResponseBody``, ``VoucherTransaction`` schemas, the List Redemptions filters),
``documentation/guides/manage-stackable-discounts.mdx`` (the redeem and rollback examples: a parent
redemption and one child per redeemable, ``order.redemptions[parent].stacked``),
``documentation/openapi/client-side.json`` (the 400 of a refused redemption:
``resource_type: redemption``, ``resource_id: rf_...``, ``error.message``) and
``documentation/api-reference/errors.mdx`` (error keys). What is a guess is listed in README.md.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .schemas import RedeemBody, RedeemCustomer, RollbackBody

if TYPE_CHECKING:
    from .state import Outcome, Voucher


def _id(prefix: str) -> str:
    # Voucherify's ids look like r_0c0469eaf705889d99: a prefix and 18 hex characters.
    return prefix + secrets.token_hex(9)


@dataclass
class Transaction:
    """An entry of ``GET /v1/vouchers/{code}/transactions`` (``VoucherTransaction``)."""

    id: str
    voucher: Voucher
    type: str  # CREDITS_REDEMPTION | CREDITS_REFUND | CREDITS_ADDITION | CREDITS_REMOVAL
    amount: int  # signed: what the balance moved by
    total: int  # gift.amount after the transaction
    balance: int  # gift.balance after the transaction
    created_at: str
    source_id: str | None = None
    source: str | None = None  # "API" for balance adjustments; null for redemptions and rollbacks
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # order / redemption / rollback references

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source_id": self.source_id,
            "voucher_id": self.voucher.id,
            "campaign_id": None,
            "source": self.source,
            "reason": self.reason,
            "type": self.type,
            "details": {
                "balance": {
                    "type": "gift_voucher",
                    "total": self.total,
                    "amount": self.amount,
                    "object": "balance",
                    "balance": self.balance,
                    "related_object": {"id": self.voucher.id, "type": "voucher"},
                },
                **self.extra,
            },
            "related_transaction_id": None,
            "created_at": self.created_at,
        }


@dataclass
class Order:
    id: str
    source_id: str | None
    amount: int | None
    metadata: dict[str, Any]
    created_at: str
    customer_id: str | None
    status: str = "PAID"
    updated_at: str | None = None
    # parent redemption id -> {date, related_object_type, related_object_id, stacked, rollback_*}
    redemptions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def view(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source_id": self.source_id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "status": self.status,
            "amount": self.amount,
            "total_amount": self.amount,
            "metadata": self.metadata,
            "customer": {"id": self.customer_id, "object": "customer"} if self.customer_id else None,
            "customer_id": self.customer_id,
            "referrer_id": None,
            "object": "order",
            "redemptions": self.redemptions,
        }


@dataclass
class RedemptionRecord:
    """A redemption (parent or child), a failed redemption, or a redemption rollback."""

    id: str
    object: str  # redemption | redemption_rollback
    date: str
    result: str  # SUCCESS | FAILURE
    status: str  # SUCCEEDED | FAILED | ROLLED_BACK
    metadata: dict[str, Any]
    customer: dict[str, Any] | None
    tracking_id: str | None
    order: Order | None
    voucher: Voucher | None = None  # children, failures and their rollbacks
    amount: int | None = None  # credits: positive on a redemption, negative on a rollback
    parent: str | None = None  # `redemption`: the parent's id (children) or the rolled-back id (rollbacks)
    children: list[str] = field(default_factory=list)  # a parent's stacked redemptions
    reason: str | None = None
    failure_code: str | None = None
    failure_message: str | None = None
    rollback_ids: list[tuple[str, str]] = field(default_factory=list)  # (id, date) of rollbacks
    voucher_code: str | None = None  # as sent (failures of unknown vouchers)

    @property
    def is_parent(self) -> bool:
        return self.object == "redemption" and self.voucher is None and self.result == "SUCCESS"

    def view(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": self.object,
            "date": self.date,
            "customer_id": self.customer["id"] if self.customer else None,
            "tracking_id": self.tracking_id,
            "metadata": self.metadata,
        }
        if self.amount is not None:
            body["amount"] = self.amount
        if self.parent is not None:
            body["redemption"] = self.parent
        if self.object == "redemption_rollback":
            body["reason"] = self.reason
        body["result"] = self.result
        body["status"] = self.status
        if self.failure_code is not None:
            body["failure_code"] = self.failure_code
            body["failure_message"] = self.failure_message
        if self.object == "redemption" and self.result == "SUCCESS":
            body["related_redemptions"] = {
                "rollbacks": [{"id": rid, "date": date, "rollback_order_mode": "WITH_ORDER"} for rid, date in self.rollback_ids]
            }
        body["order"] = self.order.view() if self.order else None
        body["channel"] = {"channel_id": "sim_api_key", "channel_type": "API"}
        body["customer"] = self.customer
        if self.voucher is not None:
            body["related_object_type"] = "voucher"
            body["related_object_id"] = self.voucher.id
            body["voucher"] = {
                "id": self.voucher.id,
                "code": self.voucher.code,
                "gift": {"amount": self.voucher.amount, "balance": self.voucher.balance, "effect": self.voucher.effect},
                "type": "GIFT_VOUCHER",
                "campaign": None,
                "campaign_id": None,
                "is_referral_code": False,
            }
            if self.amount is not None:
                body["gift"] = {"amount": self.amount}
        else:
            body["related_object_type"] = "redemption"
            body["related_object_id"] = self.id
        return body


def _customer(body: RedeemCustomer | None, tracking_id: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """The customer a redemption records (``SimpleCustomer``) and its ``tracking_id``."""
    source_id = (body.source_id if body else None) or tracking_id
    if body is None and source_id is None:
        return None, None
    seed = (body.id if body and body.id else None) or source_id or secrets.token_hex(8)
    customer = {
        "id": body.id if body and body.id else "cust_" + hashlib.sha256(seed.encode()).hexdigest()[:24],
        "name": body.name if body else None,
        "email": body.email if body else None,
        "source_id": source_id,
        "metadata": (body.metadata if body else None) or {},
        "object": "customer",
    }
    track = None
    if source_id is not None:
        track = "track_" + base64.b64encode(hashlib.sha256(source_id.encode()).digest()[:24]).decode()
    return customer, track


class Ledger:
    """Mixed into the simulator: its redemptions, rollbacks and voucher transactions."""

    redemptions: dict[str, RedemptionRecord]
    orders: dict[str, Order]
    transactions: list[Transaction]

    def seed_ledger(self) -> None:
        self.redemptions = {}
        self.orders = {}
        self.transactions = []

    def record_transaction(self, voucher: Voucher, type_: str, amount: int, now: str, **kw: Any) -> None:
        self.transactions.append(
            Transaction(_id("vtx_"), voucher, type_, amount, voucher.amount, voucher.balance, now, **kw)
        )

    # --- redeem ----------------------------------------------------------------------------------

    def redeem(self, body: RedeemBody) -> Outcome:
        from .state import error, iso_now, not_found

        codes = [item.id for item in body.redeemables]
        if len(set(codes)) != len(codes):
            return error(400, "duplicated_redeemables", "Duplicated redeemables detected",
                         "Duplicated redeemables detected in one redemption")
        vouchers = []
        for item in body.redeemables:
            voucher = self.find(item.id)  # type: ignore[attr-defined]
            if voucher is None:
                return not_found(item.id)
            vouchers.append(voucher)
        customer, tracking_id = _customer(body.customer, body.tracking_id)
        metadata = body.metadata or {}
        now_dt = datetime.now(UTC)
        now = iso_now()
        if body.order is None:
            return self._refused(vouchers[0], "missing_order", "Missing order",
                                 "A gift card redemption requires an order", metadata, customer, tracking_id, now)
        if body.order.amount is None:
            return self._refused(vouchers[0], "missing_amount", "Missing order amount",
                                 "order.amount is required to redeem gift card credits", metadata, customer,
                                 tracking_id, now)
        # Stacking rule "ALL" (the default application rule): one refusal refuses the whole request.
        remaining = body.order.amount
        plan: list[tuple[Voucher, int]] = []
        for item, voucher in zip(body.redeemables, vouchers, strict=True):
            credits = item.gift.credits if item.gift and item.gift.credits is not None else None
            refusal = None
            if not voucher.active:
                refusal = ("voucher_disabled", "voucher is disabled", "The voucher has been disabled and cannot be used.")
            elif voucher.expired(now_dt):
                refusal = ("voucher_expired", "voucher expired", "The voucher has expired.")
            elif voucher.not_started(now_dt):
                refusal = ("voucher_not_active", "voucher not active", "The voucher is not active yet.")
            elif voucher.balance == 0 or (credits is not None and credits > voucher.balance):
                refusal = ("gift_amount_exceeded", "gift amount exceeded",
                           "The gift card balance is lower than the credits requested.")
            if refusal is not None:
                key, message, long_message = refusal
                return self._refused(voucher, key, message, long_message, metadata, customer, tracking_id, now)
            take = min(credits if credits is not None else voucher.balance, remaining)
            remaining -= take
            plan.append((voucher, take))

        order = self._order(body, customer, now)
        parent = RedemptionRecord(_id("r_"), "redemption", now, "SUCCESS", "SUCCEEDED", metadata, customer,
                                  tracking_id, order)
        for voucher, take in plan:
            child = RedemptionRecord(_id("r_"), "redemption", now, "SUCCESS", "SUCCEEDED", metadata, customer,
                                     tracking_id, order, voucher=voucher, amount=take, parent=parent.id)
            voucher.balance -= take
            voucher.redeemed_quantity += 1
            voucher.redeemed_amount += take
            voucher.updated_at = now
            self.record_transaction(voucher, "CREDITS_REDEMPTION", -take, now,
                                    extra={"order": {"id": order.id, "source_id": order.source_id},
                                           "redemption": {"id": child.id}})
            parent.children.append(child.id)
            self.redemptions[child.id] = child
        self.redemptions[parent.id] = parent
        order.redemptions[parent.id] = {"date": now, "related_object_type": "redemption",
                                        "related_object_id": parent.id, "stacked": list(parent.children)}
        from .state import Outcome

        return Outcome(200, {
            "redemptions": [self.redemptions[c].view() for c in parent.children],
            "parent_redemption": parent.view(),
            "order": order.view(),
            "inapplicable_redeemables": [],
            "skipped_redeemables": [],
        })

    def _order(self, body: RedeemBody, customer: dict[str, Any] | None, now: str) -> Order:
        assert body.order is not None
        source_id = body.order.source_id
        existing = next((o for o in self.orders.values() if source_id and o.source_id == source_id), None)
        if existing is None and body.order.id:
            existing = self.orders.get(body.order.id)
        if existing is not None:
            return existing  # "the original order data will be used" (Order.source_id)
        order = Order(_id("ord_"), source_id, body.order.amount, body.order.metadata or {}, now,
                      customer["id"] if customer else None, status=body.order.status or "PAID")
        self.orders[order.id] = order
        return order

    def _refused(self, voucher: Voucher, key: str, message: str, long_message: str, metadata: dict[str, Any],
                 customer: dict[str, Any] | None, tracking_id: str | None, now: str) -> Outcome:
        from .state import error

        failed = RedemptionRecord(_id("rf_"), "redemption", now, "FAILURE", "FAILED", metadata, customer, tracking_id,
                                  None, voucher=voucher, failure_code=key, failure_message=message)
        self.redemptions[failed.id] = failed
        return error(400, key, message, voucher.code, resource_id=failed.id, resource_type="redemption",
                     error={"message": long_message})

    # --- read ------------------------------------------------------------------------------------

    def get_redemption(self, redemption_id: str) -> Outcome:
        from .state import Outcome

        record = self.redemptions.get(redemption_id)
        if record is None:
            return _redemption_not_found(redemption_id)
        return Outcome(200, record.view())

    def list_redemptions(self, limit: int, page: int, filters: list[tuple[str, str, list[str]]], junction: str,
                         order: str) -> Outcome:
        from .state import Outcome

        def value(record: RedemptionRecord, name: str) -> str | None:
            if name == "voucher_code":
                return record.voucher.code if record.voucher else None
            if name == "related_object_id":
                return record.voucher.id if record.voucher else record.id
            if name == "parent_redemption_id":
                return record.parent if record.object == "redemption" else None
            if name == "customer_id":
                return record.customer["id"] if record.customer else None
            return getattr(record, name)

        def holds(record: RedemptionRecord, name: str, op: str, values: list[str]) -> bool:
            actual = value(record, name)
            if op in ("$is", "$in"):
                return actual in values
            if op in ("$is_not", "$not_in"):
                return actual not in values
            if op == "$has_value":
                return actual is not None
            return actual is None  # $is_unknown

        def keep(record: RedemptionRecord) -> bool:
            tests = [holds(record, *f) for f in filters]
            return all(tests) if junction == "and" else any(tests) or not tests

        chosen = [r for r in self.redemptions.values() if keep(r)]
        key = order.lstrip("-")
        chosen.sort(key=lambda r: (getattr(r, key) if key in ("id", "date") else value(r, key)) or "",
                    reverse=order.startswith("-"))
        chunk = chosen[(page - 1) * limit : page * limit]
        return Outcome(200, {"object": "list", "data_ref": "redemptions", "redemptions": [r.view() for r in chunk],
                             "total": len(chosen)})

    def list_transactions(self, identifier: str, limit: int, order: str, starting_after: str | None) -> Outcome:
        from .state import Outcome, not_found

        voucher = self.find(identifier)  # type: ignore[attr-defined]
        if voucher is None:
            return not_found(identifier)
        mine = [t for t in self.transactions if t.voucher is voucher]
        # `id` orders by creation here (real ids are time-ordered; these are random)
        position = {t.id: n for n, t in enumerate(self.transactions)}
        mine.sort(key=lambda t: position[t.id], reverse=order == "-id")
        if starting_after is not None:
            ids = [t.id for t in mine]
            if starting_after not in ids:
                mine = []
            else:
                mine = mine[ids.index(starting_after) + 1 :]
        chunk = mine[:limit]
        return Outcome(200, {"object": "list", "data_ref": "data", "data": [t.view() for t in chunk],
                             "has_more": len(mine) > limit,
                             "more_starting_after": chunk[-1].id if len(mine) > limit else None})

    # --- rollback --------------------------------------------------------------------------------

    def rollback(self, redemption_id: str, body: RollbackBody | None, reason: str | None, stacked: bool) -> Outcome:
        """``stacked``: ``/rollbacks`` (a parent, or a redemption without one); else ``/rollback``."""
        from .state import Outcome, error, iso_now

        record = self.redemptions.get(redemption_id)
        if record is None or record.object != "redemption":
            return _redemption_not_found(redemption_id)
        if record.result != "SUCCESS":
            return error(400, "invalid_rollback_params", "Invalid rollback params",
                         f"Redemption {redemption_id} failed and cannot be rolled back")
        if record.status == "ROLLED_BACK":
            return error(400, "already_rolled_back", "already rolled back",
                         f"Redemption {redemption_id} has already been rolled back")
        is_child = record.voucher is not None and record.parent is not None
        if is_child:
            return error(400, "invalid_rollback_params", "Invalid rollback params",
                         "A stacked (child) redemption cannot be rolled back on its own; roll back its parent "
                         f"{record.parent} with POST /v1/redemptions/{record.parent}/rollbacks")
        if not stacked and record.is_parent:
            return error(400, "invalid_rollback_params", "Invalid rollback params",
                         f"Redemption {redemption_id} is stacked; use POST /v1/redemptions/{redemption_id}/rollbacks")
        why = reason if reason is not None else (body.reason if body else None)
        metadata = (body.metadata if body and body.metadata is not None else None)
        now = iso_now()
        rollbacks = []
        for child_id in record.children:
            child = self.redemptions[child_id]
            voucher = child.voucher
            assert voucher is not None and child.amount is not None
            rollback = RedemptionRecord(_id("rr_"), "redemption_rollback", now, "SUCCESS", "SUCCEEDED",
                                        metadata if metadata is not None else child.metadata, child.customer,
                                        child.tracking_id, child.order, voucher=voucher, amount=-child.amount,
                                        parent=child.id, reason=why)
            voucher.balance += child.amount
            voucher.redeemed_quantity -= 1
            voucher.updated_at = now
            child.status = "ROLLED_BACK"
            child.rollback_ids.append((rollback.id, now))
            self.redemptions[rollback.id] = rollback
            self.record_transaction(voucher, "CREDITS_REFUND", child.amount, now,
                                    extra={"order": {"id": child.order.id if child.order else None,
                                                     "source_id": child.order.source_id if child.order else None},
                                           "redemption": {"id": child.id}, "rollback": {"id": rollback.id}})
            rollbacks.append(rollback)
        parent_rollback = RedemptionRecord(_id("rr_"), "redemption_rollback", now, "SUCCESS", "SUCCEEDED",
                                           metadata if metadata is not None else record.metadata, record.customer,
                                           record.tracking_id, record.order, parent=record.id, reason=why)
        record.status = "ROLLED_BACK"
        record.rollback_ids.append((parent_rollback.id, now))
        self.redemptions[parent_rollback.id] = parent_rollback
        order = record.order
        if order is not None:
            order.status = "CANCELED"
            order.updated_at = now
            entry = order.redemptions.get(record.id)
            if entry is not None:
                entry.update({"rollback_id": parent_rollback.id, "rollback_date": now,
                              "rollback_stacked": [r.id for r in rollbacks]})
        return Outcome(200, {
            "rollbacks": [r.view() for r in rollbacks],
            "parent_rollback": parent_rollback.view(),
            "order": order.view() if order else None,
        })


def _redemption_not_found(redemption_id: str) -> Outcome:
    from .state import error

    return error(404, "not_found", "Resource not found", f"Cannot find redemption with id {redemption_id}",
                 resource_id=redemption_id, resource_type="redemption")
