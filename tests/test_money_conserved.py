"""No money is created or lost through the payment webhooks, whatever the faults (property-based).

Random sequences of NewStore payment webhooks (create_instrument, capture, refund, revoke) with
random amounts (Decimal, 2 places), resent duplicates (the same ``idempotency_key``, sometimes
with a changed amount, retry_id or transactions), successful answers lost on their way back, and
faults injected at the sandbox provider (``/_sim/faults``: a delay beyond the step timeout, so the
provider acts after the gateway gave up; 500/502/503/429 answers; garbage bodies; the simulator
kit has no connection-reset mode) run against the gateway in-process, on the shipped sandbox
mapping ("hold then capture") with its step timeout shortened. The test behaves as NewStore does:

- it keeps, per instrument, the transactions of the gateway's successful answers (deduplicated
  by ``transaction_id``) and sends them with every capture, refund and revoke;
- an answer that is not definitive (any 5xx) is retried with the same key (and the same body,
  or a new retry_id) until it is; a definitive answer is a 200 (transactions) or a 4xx
  (``{error_code, message}``); a lost answer is retried after the next step, and must come back
  byte for byte, as must a duplicate of any success.

After each sequence, once every delayed provider call has landed, the card at the provider must
match the transactions exactly:

- money taken from the card = sum of ``refund_amount`` over all transactions (a capture makes its
  amount refundable, a refund makes it no longer so): ``funds = opening - taken``;
- money reserved on the card = sum of ``capture_amount`` (an authorization makes its amount
  capturable, a capture or revoke takes it away): ``held = reserved``;
- what the card shows as its balance (``/_sim/cards`` and the gateway's own balance webhook) is
  ``opening - taken - reserved``,

and every hold at the provider must match its instrument's transactions (an authorization the
gateway did not report, a capture it did not report, or one it reported twice, all show here).

Bounded for CI (25 sequences of at most 12 steps); ``GATEWAY_FUZZ_FULL=1`` runs 500 sequences,
``GATEWAY_FUZZ_EXAMPLES=N`` any number. ``benchmarks/money_fuzz.py`` runs the full size and prints
figures.
"""

from __future__ import annotations

import json
import os
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import SANDBOX_MAPPING, Sandbox, client_for, sandbox_provider, write_config
from .newstore_spec import PSP_ERROR_CODES, PSP_RESPONSE, check_psp_error
from .stores import TEST_KEY

FULL = os.environ.get("GATEWAY_FUZZ_FULL") == "1"
MAX_EXAMPLES = int(os.environ.get("GATEWAY_FUZZ_EXAMPLES") or (500 if FULL else 25))
MAX_STEPS = 12
STATS_FILE = os.environ.get("GATEWAY_FUZZ_STATS")  # benchmarks/money_fuzz.py reads the figures there

STEP_TIMEOUT = 0.4  # seconds per provider call in the mapping copy the gateway runs
DELAY = 1.0  # a "delay" fault: the provider answers (and acts) after the gateway gave up
MAX_ATTEMPTS = 12  # NewStore retries an unknown outcome; more than this many is a hung gateway
CURRENCY = "USD"

ENCODE = msgspec.json.Encoder(decimal_format="number")
DECODE = msgspec.json.Decoder(float_hook=Decimal)
CENT = Decimal("0.01")

PREFIX = "/sandbox/financial_instruments"

STATS: Counter[str] = Counter()


# --- what a sequence is made of ----------------------------------------------------------------

FAULTS = st.one_of(
    st.none(),
    st.none(),
    st.just({"mode": "delay", "seconds": DELAY}),
    st.builds(lambda status, times: {"mode": "status", "status": status, "times": times},
              st.sampled_from([500, 502, 503, 429]), st.integers(1, 3)),
    st.builds(lambda times: {"mode": "garbage", "times": times}, st.integers(1, 2)),
)
# An amount: cents outright, or a share (in quarters) of what the instrument has available, so
# that most captures and refunds are ones the gateway lets through to the provider.
AMOUNTS = st.one_of(
    st.tuples(st.just("cents"), st.integers(1, 6000)),
    st.tuples(st.just("share"), st.integers(1, 4)),
    st.tuples(st.just("share"), st.integers(1, 4)),
)
# Every webhook may also have its successful answer lost on the way back (NewStore then retries
# it, with the same key, after the next step), and NewStore may give each retry a new retry_id.
DELIVERY = {"fault": FAULTS, "lost": st.sampled_from([False] * 5 + [True]), "fresh_retry_id": st.booleans()}
CREATE = st.fixed_dictionaries({"op": st.just("create"), "amount": AMOUNTS, **DELIVERY})
CAPTURE = st.fixed_dictionaries({"op": st.just("capture"), "target": st.integers(0, 7), "amount": AMOUNTS,
                                 **DELIVERY})
REFUND = st.fixed_dictionaries({"op": st.just("refund"), "target": st.integers(0, 7), "amount": AMOUNTS,
                                **DELIVERY})
REVOKE = st.fixed_dictionaries({"op": st.just("revoke"), "target": st.integers(0, 7),
                                "with_arguments": st.booleans(), **DELIVERY})
DUPLICATE = st.fixed_dictionaries({"op": st.just("duplicate"), "target": st.integers(0, 11),
                                   "change": st.sampled_from([None, "amount", "retry_id", "transactions"]),
                                   **DELIVERY})
# Weighted by repetition: captures and refunds are what move money.
STEPS = st.one_of(CREATE, CREATE, CAPTURE, CAPTURE, CAPTURE, REFUND, REFUND, REFUND, REVOKE, DUPLICATE, DUPLICATE)
# Most sequences start with a create (an instrument to work on); the others exercise webhooks
# about an instrument the provider never issued.
SEQUENCES = st.builds(
    lambda first, rest: [*first, *rest],
    st.one_of(st.lists(CREATE, min_size=1, max_size=1), st.lists(CREATE, min_size=1, max_size=1), st.just([])),
    st.lists(STEPS, max_size=MAX_STEPS - 1),
)
OPENINGS = st.integers(100, 20_000)  # cents on the card at the start


# --- NewStore's side -----------------------------------------------------------------------------


def money(cents: int) -> Decimal:
    return (Decimal(cents) * CENT).quantize(CENT)


def cents(amount: Decimal) -> int:
    value = amount / CENT
    assert value == value.to_integral_value(), f"{amount} is not a whole number of cents"
    return int(value)


@dataclass
class Instrument:
    id: str
    transactions: dict[str, dict[str, Any]] = field(default_factory=dict)  # by transaction_id, in order

    def record(self, answer: list[dict[str, Any]]) -> None:
        for transaction in answer:
            assert transaction["instrument_id"] == self.id, transaction
            self.transactions.setdefault(transaction["transaction_id"], transaction)

    def available(self, which: str) -> Decimal:
        return sum((Decimal(t.get(f"{which}_amount", 0)) for t in self.transactions.values()), Decimal(0))


@dataclass
class Sent:
    """One webhook as first sent, and the definitive answer it got."""

    path: str
    body: dict[str, Any]
    status: int
    content: bytes


@dataclass
class Lost:
    """A successful answer NewStore never received: it retries the webhook with the same key."""

    path: str
    body: dict[str, Any]
    content: bytes
    after_step: int


@dataclass
class Run:
    client: Any
    sandbox: Sandbox
    card: str
    opening: int
    instruments: list[Instrument] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    lost: list[Lost] = field(default_factory=list)
    delayed_until: float = 0.0
    trace: list[str] = field(default_factory=list)
    steps_done: int = 0

    # -- delivery, as NewStore does it --

    def deliver(self, path: str, body: dict[str, Any], fault: dict[str, Any] | None,
                fresh_retry_id: bool = False) -> tuple[int, bytes, Any]:
        """Sends until the answer is definitive; returns (status, content, parsed JSON)."""
        if fault is not None:
            self.sandbox.fault(**fault)
            STATS[f"fault:{fault['mode']}"] += 1
            if fault["mode"] == "delay":
                # The delayed call still runs at the provider, after the gateway has given up on it.
                self.delayed_until = time.monotonic() + DELAY + 0.5
        content = ENCODE.encode(body)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            if attempt > 1 and fresh_retry_id:
                content = ENCODE.encode({**body, "retry_id": str(uuid.uuid4())})
            STATS["webhooks"] += 1
            response = self.client.post(path, content=content, headers={"Content-Type": "application/json"})
            parsed = DECODE.decode(response.content) if response.content else None
            self.trace.append(f"  {path.rsplit('/', 1)[-1]} attempt {attempt}: {response.status_code} "
                              f"{response.content[:300]!r}")
            if response.status_code >= 500:
                STATS["retries"] += 1
                STATS[f"status:{response.status_code}"] += 1
                check_psp_error(json.loads(response.content))
                assert parsed["error_code"] in {"internal_error", "retry_error", "rate_limit"}, parsed
                continue
            STATS[f"status:{response.status_code}"] += 1
            if response.status_code == 200:
                check_transactions(response.content)
            else:
                assert 400 <= response.status_code < 500, response.status_code
                check_psp_error(json.loads(response.content))
                assert parsed["error_code"] in PSP_ERROR_CODES
                STATS[f"error:{parsed['error_code']}"] += 1
                message = re.sub(r"`hold_[0-9a-f]+`", "`hold_…`", parsed["message"])
                STATS["why:" + re.sub(r"[0-9][0-9.]*", "N", message)[:80]] += 1
            return response.status_code, response.content, parsed
        raise AssertionError(f"no definitive answer after {MAX_ATTEMPTS} attempts:\n" + "\n".join(self.trace))

    def send(self, path: str, body: dict[str, Any], step: dict[str, Any], instrument: Instrument | None) -> None:
        status, content, parsed = self.deliver(path, body, step["fault"], step["fresh_retry_id"])
        STATS[f"{_operation(path)}:{status}"] += 1
        self.sent.append(Sent(path, body, status, content))
        if status == 200 and step["lost"]:
            STATS["lost:answers"] += 1
            self.trace.append("  (answer lost on the way to NewStore)")
            self.lost.append(Lost(path, body, content, self.steps_done))
        elif status == 200:
            if instrument is None:  # create: the instrument is what the answer names
                assert len(parsed) >= 1
                instrument = Instrument(parsed[0]["instrument_id"])
                self.instruments.append(instrument)
            instrument.record(parsed)

    def body(self, arguments: dict[str, Any] | None, instrument: Instrument) -> dict[str, Any]:
        body: dict[str, Any] = {
            "account_id": "acct-fuzz",
            "instrument_id": instrument.id,
            "transactions": list(instrument.transactions.values()),
            "idempotency_key": str(uuid.uuid4()),
            "retry_id": str(uuid.uuid4()),
            "metadata": {},
        }
        if arguments is not None:
            body["arguments"] = arguments
        return body

    def target(self, index: int, prefer: str | None = None) -> Instrument | None:
        """The instrument a step acts on: mostly one with something available for capture (or
        refund), so that most steps move money; index 0 is any instrument."""
        if not self.instruments:
            # Nothing created yet: now and then an instrument id the provider never issued (its
            # hold is unknown), else the step is skipped.
            return Instrument("hold_" + "0" * 24) if index == 7 else None
        candidates = self.instruments
        if prefer is not None and index != 0:
            candidates = [i for i in self.instruments if i.available(prefer) > 0] or self.instruments
        return candidates[index % len(candidates)]

    # -- the steps --

    def step(self, step: dict[str, Any]) -> None:
        STATS[f"step:{step['op']}"] += 1
        self.trace.append(f"{step}")
        getattr(self, f"_{step['op']}")(step)
        self.steps_done += 1
        # Answers lost before the step just run are retried now: one step came in between.
        self.retry_lost(before=self.steps_done - 1)

    def retry_lost(self, before: int | None = None) -> None:
        """NewStore retries a webhook whose answer it never got: same key, a new retry_id, and the
        instrument's transactions as NewStore knows them now. It must get the stored answer."""
        due = [lost for lost in self.lost if before is None or lost.after_step < before]
        for lost in due:
            self.lost.remove(lost)
            body = {**_with_decimals(lost.body), "retry_id": str(uuid.uuid4())}
            instrument = self._known_instrument(lost.path)
            if instrument is not None:
                body["transactions"] = list(instrument.transactions.values())
            self.trace.append(f"retry of the lost answer of {lost.path}")
            status, content, parsed = self.deliver(lost.path, body, None)
            assert (status, content) == (200, lost.content), (
                "NewStore's retry of a webhook whose answer was lost did not get that answer:\n"
                f"{lost.content!r}\n{content!r}\n" + "\n".join(self.trace))
            self._instrument_of(lost.path, parsed).record(parsed)

    def _known_instrument(self, path: str) -> Instrument | None:
        return next((i for i in self.instruments if path.startswith(f"{PREFIX}/{i.id}/")), None)

    def _create(self, step: dict[str, Any]) -> None:
        body = {
            "account_id": "acct-fuzz",
            "idempotency_key": str(uuid.uuid4()),
            "retry_id": str(uuid.uuid4()),
            "arguments": {
                "instrument": {"type": "token", "identifier": self.card},
                # A share of the opening balance, so that most creates fit (some will not).
                "amount": self._amount(step["amount"], money(self.opening)),
                "currency": CURRENCY,
                "payment_method": "gift_card",
            },
            "metadata": {},
        }
        self.send(PREFIX, body, step, None)

    def _amount(self, spec: tuple[str, int], available: Decimal) -> Decimal:
        kind, value = spec
        if kind == "cents":
            return money(value)
        return max(CENT, (available * value / 4).quantize(CENT))

    def _capture(self, step: dict[str, Any]) -> None:
        instrument = self.target(step["target"], "capture")
        if instrument is None:
            return
        amount = self._amount(step["amount"], instrument.available("capture"))
        body = self.body({"amount": amount, "currency": CURRENCY}, instrument)
        self.send(f"{PREFIX}/{instrument.id}/_capture", body, step, instrument)

    def _refund(self, step: dict[str, Any]) -> None:
        instrument = self.target(step["target"], "refund")
        if instrument is None:
            return
        amount = self._amount(step["amount"], instrument.available("refund"))
        body = self.body({"amount": amount, "currency": CURRENCY}, instrument)
        self.send(f"{PREFIX}/{instrument.id}/_refund", body, step, instrument)

    def _revoke(self, step: dict[str, Any]) -> None:
        instrument = self.target(step["target"], "capture")
        if instrument is None:
            return
        arguments = {"amount": instrument.available("capture"), "currency": CURRENCY} if step["with_arguments"] else None
        body = self.body(arguments, instrument)
        self.send(f"{PREFIX}/{instrument.id}/_revoke", body, step, instrument)

    def _duplicate(self, step: dict[str, Any]) -> None:
        """NewStore resends an earlier webhook with the same idempotency_key, its body maybe changed."""
        if not self.sent:
            return
        original = self.sent[step["target"] % len(self.sent)]
        body = _with_decimals(original.body)
        change = step["change"]
        if change == "amount" and "arguments" in body and body["arguments"] is not None:
            body["arguments"]["amount"] = Decimal(body["arguments"].get("amount") or 0) + CENT
        elif change == "retry_id":
            body["retry_id"] = str(uuid.uuid4())
        elif change == "transactions" and "transactions" in body:
            instrument = self._known_instrument(original.path)
            if instrument is not None:
                body["transactions"] = list(instrument.transactions.values())
        STATS[f"duplicate:{change}"] += 1
        status, content, parsed = self.deliver(original.path, body, step["fault"], step["fresh_retry_id"])
        if original.status == 200:
            # A success is stored and replayed byte for byte, whatever the body of the retry.
            assert (status, content) == (original.status, original.content), (
                "a duplicate of a successful webhook was not replayed:\n"
                f"{original.content!r}\n{content!r}\n" + "\n".join(self.trace))
        if status == 200:
            instrument = self._instrument_of(original.path, parsed)
            instrument.record(parsed)
            # NewStore now has the answer it had lost: it no longer retries that webhook.
            key = original.body["idempotency_key"]
            self.lost = [lost for lost in self.lost if lost.body["idempotency_key"] != key]

    def _instrument_of(self, path: str, answer: list[dict[str, Any]]) -> Instrument:
        instrument_id = answer[0]["instrument_id"] if answer else path.split("/")[-2]
        for instrument in self.instruments:
            if instrument.id == instrument_id:
                return instrument
        instrument = Instrument(instrument_id)
        self.instruments.append(instrument)
        return instrument

    # -- the property --

    def check_money(self) -> None:
        self.retry_lost()
        wait = self.delayed_until - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        self.sandbox.http.delete("/_sim/faults").raise_for_status()
        taken = sum((i.available("refund") for i in self.instruments), Decimal(0))
        reserved = sum((i.available("capture") for i in self.instruments), Decimal(0))
        card = {c["number"]: c for c in self.sandbox.cards()}[self.card]
        holds = [h for h in self.sandbox.http.get("/_sim/holds").json()["holds"] if h["card_number"] == self.card]
        report = "\n".join([
            f"opening {self.opening}, taken per transactions {cents(taken)}, reserved {cents(reserved)}",
            f"card at provider: funds {card['funds_minor']}, held {card['held_minor']}, "
            f"balance {card['balance']['amount_minor']}",
            "holds at provider: " + json.dumps([{k: h[k] for k in ('id', 'state', 'amount_minor', 'captured_minor',
                                                                     'refunded_minor', 'remaining_minor')}
                                                for h in holds]),
            "instruments: " + json.dumps({i.id: list(i.transactions.values()) for i in self.instruments}, default=str),
            "trace:", *self.trace,
        ])
        assert card["funds_minor"] == self.opening - cents(taken), "money moved that the answers do not show\n" + report
        assert card["held_minor"] == cents(reserved), "funds held that the answers do not show\n" + report
        assert card["balance"]["amount_minor"] == self.opening - cents(taken) - cents(reserved), report
        by_id = {i.id: i for i in self.instruments}
        for hold in holds:
            instrument = by_id.get(hold["id"])
            captured = hold["captured_minor"] - hold["refunded_minor"]
            if instrument is None:
                assert hold["remaining_minor"] == 0 and captured == 0, f"a hold no answer reported\n{report}"
                continue
            assert captured == cents(instrument.available("refund")), report
            assert hold["remaining_minor"] == cents(instrument.available("capture")), report
        balance = self.client.post("/sandbox/gift_card/balance", json={"identifier": {"number": self.card}})
        assert balance.status_code == 200, balance.text
        assert DECODE.decode(balance.content)["value"] == money(card["balance"]["amount_minor"]), report


def _operation(path: str) -> str:
    return "create" if path == PREFIX else path.rsplit("/_", 1)[-1]


def _without_multiple_of(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_multiple_of(v) for k, v in schema.items() if k != "multipleOf"}
    return schema


# jsonschema checks `multipleOf: 0.01` in floating point, where 0.07 / 0.01 is not a whole number:
# the schema without it, and the two decimal places checked on exact Decimals instead.
_RESPONSE_SCHEMA = _without_multiple_of(PSP_RESPONSE)


def check_transactions(content: bytes) -> None:
    jsonschema.validate(json.loads(content), _RESPONSE_SCHEMA, format_checker=jsonschema.FormatChecker())
    for transaction in DECODE.decode(content):
        for name in ("capture_amount", "refund_amount"):
            amount = Decimal(transaction.get(name, 0))
            assert amount == amount.quantize(CENT), f"{name} {amount} has more than 2 decimal places"


def _with_decimals(value: Any) -> Any:
    """A deep copy that keeps Decimals as they are."""
    if isinstance(value, dict):
        return {k: _with_decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_decimals(v) for v in value]
    return value


# --- the test ------------------------------------------------------------------------------------


@pytest.fixture
def payments_gateway(sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The gateway in-process on a copy of the shipped sandbox mapping whose provider calls time
    out after STEP_TIMEOUT, with its own idempotency store."""
    mapping = tmp_path / "sandbox.yaml"
    text, count = re.subn(r"(?m)^timeout: [0-9.]+", f"timeout: {STEP_TIMEOUT}", SANDBOX_MAPPING.read_text())
    assert count == 1, "the shipped sandbox mapping has no top-level `timeout:` line any more"
    mapping.write_text(text)
    monkeypatch.setenv("GATEWAY_TEST_IDEMPOTENCY_KEY", TEST_KEY)
    config = write_config(
        tmp_path,
        # The circuit breaker off: the faults this test injects on purpose would open it, and then
        # every retry within MAX_ATTEMPTS would be answered "unavailable" without reaching the
        # provider. An open breaker sends nothing, so it cannot create or lose money either way.
        {"sandbox": sandbox_provider(sandbox, mapping, breaker={"enabled": False})},
        idempotency={
            "store": f"sqlite:///{tmp_path / 'state' / 'idem.sqlite3'}",
            "encryption_keys": [{"id": "k1", "key": {"env": "GATEWAY_TEST_IDEMPOTENCY_KEY"}}],
        },
    )
    with client_for(config) as client:
        yield client


@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
    print_blob=True,
)
@given(opening=OPENINGS, steps=SEQUENCES)
def test_no_money_is_created_or_lost(payments_gateway: Any, sandbox: Sandbox, opening: int,
                                     steps: list[dict[str, Any]]) -> None:
    sandbox.reset()
    card = "60064980" + f"{uuid.uuid4().int % 10**8:08d}"
    sandbox.add_card(card, pin=None, amount_minor=opening, currency=CURRENCY)
    run = Run(payments_gateway, sandbox, card, opening)
    STATS["sequences"] += 1
    try:
        for step in steps:
            run.step(step)
        run.check_money()
    finally:
        # A delayed call must not land in the next sequence.
        wait = run.delayed_until - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        if STATS_FILE:
            Path(STATS_FILE).write_text(json.dumps(dict(STATS), sort_keys=True))


# --- the same, pinned down: deterministic cases ---------------------------------------------------


def _create_body(card: str, amount: str, key: str) -> dict[str, Any]:
    return {"account_id": "acct-fuzz", "idempotency_key": key, "retry_id": str(uuid.uuid4()), "metadata": {},
            "arguments": {"instrument": {"type": "token", "identifier": card}, "amount": Decimal(amount),
                          "currency": CURRENCY, "payment_method": "gift_card"}}


def _post(client: Any, path: str, body: dict[str, Any]) -> Any:
    return client.post(path, content=ENCODE.encode(body), headers={"Content-Type": "application/json"})


@pytest.mark.parametrize("operation", ["create", "capture", "refund", "revoke"])
def test_an_unknown_outcome_retried_with_the_same_key_moves_money_once(
        payments_gateway: Any, sandbox: Sandbox, operation: str) -> None:
    """The provider acts after the gateway gave up (a delay beyond the step timeout): the answer
    is a 500 retry_error, NewStore's retry gets the provider's replay, and the card moved once."""
    card = "6006498100000001"
    sandbox.add_card(card, pin=None, amount_minor=10_000)
    run = Run(payments_gateway, sandbox, card, 10_000)
    plain = {"fault": None, "lost": False, "fresh_retry_id": False}
    delayed = {"fault": {"mode": "delay", "seconds": DELAY}, "lost": False, "fresh_retry_id": True}
    plan = {
        "create": [{"op": "create", "amount": ("cents", 3000), **delayed}],
        "capture": [{"op": "create", "amount": ("cents", 3000), **plain},
                    {"op": "capture", "target": 0, "amount": ("cents", 1200), **delayed}],
        "refund": [{"op": "create", "amount": ("cents", 3000), **plain},
                   {"op": "capture", "target": 0, "amount": ("cents", 1200), **plain},
                   {"op": "refund", "target": 0, "amount": ("cents", 500), **delayed}],
        "revoke": [{"op": "create", "amount": ("cents", 3000), **plain},
                   {"op": "capture", "target": 0, "amount": ("cents", 1200), **plain},
                   {"op": "revoke", "target": 0, "with_arguments": False, **delayed}],
    }[operation]
    for step in plan:
        run.step(step)
    assert run.sent[-1].status == 200
    assert any("retry_error" in line for line in run.trace), run.trace  # the outcome was unknown at first
    run.check_money()
    expected = {"create": (10_000, 3000), "capture": (8800, 1800), "refund": (9300, 1800), "revoke": (8800, 0)}
    card_view = {c["number"]: c for c in sandbox.cards()}[card]
    assert (card_view["funds_minor"], card_view["held_minor"]) == expected[operation]


@pytest.mark.parametrize("operation", ["capture", "refund"])
def test_a_duplicate_gets_the_stored_answer_even_when_its_transactions_include_it(
        payments_gateway: Any, sandbox: Sandbox, operation: str) -> None:
    """NewStore delivers a webhook twice (at least once), the second time with the instrument's
    transactions as they are now, which include the first delivery's own capture or refund: it
    gets the stored answer, not `400 instrument_error` ("0 is available for ...") from the amount
    check (which once ran before the idempotency store; found by the property above)."""
    card = "6006498100000002"
    sandbox.add_card(card, pin=None, amount_minor=10_000)
    created = _post(payments_gateway, PREFIX, _create_body(card, "10", str(uuid.uuid4())))
    transactions = DECODE.decode(created.content)
    instrument = transactions[0]["instrument_id"]
    if operation == "refund":
        captured = _post(payments_gateway, f"{PREFIX}/{instrument}/_capture", {
            "account_id": "a", "transactions": transactions, "idempotency_key": str(uuid.uuid4()),
            "arguments": {"amount": Decimal(10), "currency": CURRENCY}})
        transactions += DECODE.decode(captured.content)
    body = {"account_id": "a", "transactions": transactions, "idempotency_key": str(uuid.uuid4()),
            "arguments": {"amount": Decimal(10), "currency": CURRENCY}}
    first = _post(payments_gateway, f"{PREFIX}/{instrument}/_{operation}", body)
    assert first.status_code == 200, first.text
    again = _post(payments_gateway, f"{PREFIX}/{instrument}/_{operation}",
                  {**body, "transactions": transactions + DECODE.decode(first.content)})
    assert (again.status_code, again.content) == (200, first.content), again.text


def test_a_duplicate_with_another_amount_gets_the_stored_answer(payments_gateway: Any, sandbox: Sandbox) -> None:
    """The same key gets the stored answer "even if its body differs", even a capture resent with a
    larger amount than the instrument has left."""
    card = "6006498100000003"
    sandbox.add_card(card, pin=None, amount_minor=10_000)
    transactions = DECODE.decode(_post(payments_gateway, PREFIX, _create_body(card, "10", str(uuid.uuid4()))).content)
    instrument = transactions[0]["instrument_id"]
    body = {"account_id": "a", "transactions": transactions, "idempotency_key": str(uuid.uuid4()),
            "arguments": {"amount": Decimal(10), "currency": CURRENCY}}
    first = _post(payments_gateway, f"{PREFIX}/{instrument}/_capture", body)
    assert first.status_code == 200, first.text
    again = _post(payments_gateway, f"{PREFIX}/{instrument}/_capture",
                  {**body, "arguments": {"amount": Decimal("10.01"), "currency": CURRENCY}})
    assert (again.status_code, again.content) == (200, first.content), again.text
