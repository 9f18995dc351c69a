"""PROPERTIES.md 7-12 and 46-48 under random sequences that add the v1.1 money flows
(issue 14) to the money machine of test_money_properties.py.

The machine of that module (top-ups, balance and card payments, captures, cancels, refunds,
retries, key reuses, races) runs here with these rules interleaved at random:

- payouts from a balance to an approved card (`paid`), a declining card (`failed`, credited
  back: nothing moves), the processing card (`pending` until its webhook), each possibly
  with the gateway's answer lost (GatewayOutcomeUnknownError on every attempt: 409, the
  payout `pending` and its money held, never guessed);
- the client's retry of such a payout, with its key, which asks the gateway again;
- card payments by the processing card (`processing`) and 3-D Secure top-ups and payments
  (`requires_action`), completed through the gateway's signed webhook, built as the sandbox
  builds it: a pass, a fail, and each delivered twice, then the opposite result (replays);
- the webhooks of processing payments and pending payouts, delivered once or twice, or never
  (lost: nothing sends them unless a rule does);
- reconciliation runs (`reconcile.run` with payouts' sweep, as if 11 minutes later, or two
  days later, past CASHEW_ACTION_TTL, which fails what was never authenticated);
- card top-ups whose gateway answers are all lost after the charge (409, nothing credited),
  settled by the client's retry with the key.

The model predicts every outcome; after every step the invariants of the base machine hold
with payouts counted (Σ balances = card money in - card refunds - payouts paid or pending,
no balance below zero, every stored payment as modelled), and every stored payout is what
the model says (so a payout's debit and its credit back happen once each: 47). At the end the
log holds exactly one entry per party per settled outcome, and the admin audit passes.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, invariant, precondition, rule, run_state_machine_as_test

from cashew import aws, clock, dynamo
from cashew.config import get_settings
from cashew.errors import IdempotencyInProgressError
from cashew.gateways.base import GatewayOutcomeUnknownError
from cashew.gateways.sandbox import SandboxGateway
from cashew.identity import Caller
from cashew.payments import idempotency, reconcile
from cashew.payments import store as payment_store
from cashew.payments.idempotency import Outcome
from cashew.payouts import create as payouts
from cashew.payouts import face as payouts_face
from cashew.payouts import store as payouts_store
from cashew.payouts.models import PayoutRequest
from tests.integration.conftest import Stack, add_card, running_stack
from tests.integration.test_gateway_webhooks import _event
from tests.integration.test_money_properties import (
    CARDS,
    CURRENCY,
    PARTIES,
    USER,
    USERS,
    Member,
    MoneyMachine,
    Sent,
    _attempt,
)
from tests.integration.test_three_d_secure import _deliver

# The cards after the base machine's two approved ones (indexes 0 and 1).
DECLINING, PROCESSING, THREE_DS = "4000000000000002", "4000000000003220", "4000000000003063"
PAYOUT_CARD = st.sampled_from(["approved", "declining", "processing"])
CARD_INDEX = {"approved": 0, "declining": 2, "processing": 3}
PAYOUT = st.integers(1, 4_000)
RECONCILED = timedelta(minutes=11)  # past CASHEW_RECONCILE_AFTER (600 s)
ABANDONED = timedelta(days=2)  # past CASHEW_ACTION_TTL (1 day) too


@dataclass
class ModelledPayout:
    id: str
    user: int
    card: str
    amount: int
    status: str
    failure_code: str | None = None
    unknown_key: str | None = None  # the key of a request whose answer was lost


class _Flaky:
    """The stack's gateway, whose payouts time out after sending while `down`."""

    def __init__(self, real: Any) -> None:
        self.real, self.down = real, False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def payout(self, *args: Any, **kwargs: Any) -> Any:
        answer = self.real.payout(*args, **kwargs)
        if self.down:
            raise GatewayOutcomeUnknownError("timed out after sending")
        return answer

    def authorise(self, *args: Any, **kwargs: Any) -> Any:
        answer = self.real.authorise(*args, **kwargs)
        if self.down:
            raise GatewayOutcomeUnknownError("timed out after sending")
        return answer


@pytest.fixture
def stack() -> Iterator[Stack]:
    """Each test's own embedded endpoint (the audit must see only the test's users)."""
    with running_stack(separate=True) as running:
        yield running


def _log_entries() -> list[dict[str, Any]]:
    client, table = aws.dynamodb(), get_settings().log_table
    found: list[dict[str, Any]] = []
    for page in client.get_paginator("scan").paginate(TableName=table):
        found += page["Items"]
    return found


class MoneyMachineV11(MoneyMachine):
    """The base machine, with payouts, 3-D Secure, webhooks, timeouts and reconciliation."""

    flaky: _Flaky
    payouts = Bundle("payouts")
    open_payments = Bundle("open_payments")  # processing or requires_action when created

    def __init__(self) -> None:
        super().__init__()
        self.payout_model: dict[str, ModelledPayout] = {}
        self.actions: dict[str, str] = {}  # payment id -> its challenge reference
        self.lost_top_ups: list[tuple[str, dict[str, Any]]] = []  # (key, args): answer lost
        self.flaky.down = False
        _clear_requests()  # an earlier sequence's lost requests would be resumed in this one

    # --------------------------------------------------------------------- payouts

    @rule(target=payouts, user=USER, card=PAYOUT_CARD, amount=PAYOUT, lost=st.booleans())
    def payout(self, user: int, card: str, amount: int, lost: bool) -> Any:
        key = str(uuid.uuid4())
        enough = self.balances[user] >= amount
        self.flaky.down = lost
        try:
            outcome = _attempt(lambda: self._call_payout(key, user=user, card=card, amount=amount))
        finally:
            self.flaky.down = False
        if lost and enough:
            # The debit is written, the answer lost: 409, the payout pending, money held
            assert isinstance(outcome, IdempotencyInProgressError), outcome
            listed = payouts_store.list_payouts(self.members[user].id, 100, None).data
            new = [p for p in listed if p.id not in self.payout_model]
            assert len(new) == 1, new
            assert (new[0].status, new[0].amount) == ("pending", amount), new[0]
            self._debit(user, amount)
            self.payout_model[new[0].id] = ModelledPayout(
                new[0].id, user, card, amount, "pending", unknown_key=key
            )
            return new[0].id
        assert isinstance(outcome, Outcome), f"payout {card} {amount}: {outcome!r}"
        self.sent.append(Sent("payout", key, {"user": user, "card": card, "amount": amount},
                              outcome))  # fmt: skip
        body = outcome.model
        assert not outcome.replayed and body.id not in self.payout_model
        if not enough:
            status, code = "failed", "insufficient_funds"
        else:
            status, code = {"approved": ("paid", None), "declining": ("failed", "card_declined"),
                            "processing": ("pending", None)}[card]  # fmt: skip
        assert (body.status, body.failure_code, body.amount) == (status, code, amount), body
        self.payout_model[body.id] = ModelledPayout(body.id, user, card, amount, status, code)
        if status != "failed":
            self._debit(user, amount)
        return body.id

    def _call_payout(self, key: str, *, user: int, card: str, amount: int) -> Outcome[Any]:
        member = self.members[user]
        request = PayoutRequest(
            amount=amount, currency=CURRENCY, payment_method_id=member.cards[CARD_INDEX[card]]
        )
        return payouts.create_payout(member.caller, request, key)

    def _debit(self, user: int, amount: int) -> None:
        self.balances[user] -= amount
        self.paid_out += amount

    def _gateway_says(self, p: ModelledPayout) -> None:
        """A pending payout settled as the gateway answers when asked again."""
        if p.card == "approved":
            p.status = "paid"
        elif p.card == "declining":
            p.status, p.failure_code = "failed", "card_declined"
            self.balances[p.user] += p.amount  # credited back, in the same write
            self.paid_out -= p.amount
        # the processing card's payout stays pending: only its webhook settles it

    @precondition(lambda self: any(p.unknown_key for p in self.payout_model.values()))
    @rule(pick=st.integers(0, 10_000))
    def retry_lost_payout(self, pick: int) -> None:
        """The client retries a payout whose answer was lost, with its key."""
        lost = [p for p in self.payout_model.values() if p.unknown_key]
        p = lost[pick % len(lost)]
        key, p.unknown_key = p.unknown_key, None
        assert key is not None
        args = {"user": p.user, "card": p.card, "amount": p.amount}
        outcome = _attempt(lambda: self._call_payout(key, **args))
        assert isinstance(outcome, Outcome), f"retry of {p}: {outcome!r}"
        self.sent.append(Sent("payout", key, args, outcome))
        if p.status == "pending":
            self._gateway_says(p)
        body = outcome.model
        assert (body.id, body.status, body.failure_code) == (p.id, p.status, p.failure_code)

    def _webhook_pending(self) -> list[ModelledPayout]:
        """Pending payouts to the processing card whose gateway id is known."""
        return [
            p
            for p in self.payout_model.values()
            if p.card == "processing" and p.status == "pending" and not p.unknown_key
        ]

    @precondition(lambda self: self._webhook_pending())
    @rule(pick=st.integers(0, 10_000), times=st.integers(1, 2))
    def payout_webhook(self, pick: int, times: int) -> None:
        """The sandbox's signed `payout.paid` of a pending payout, once or twice."""
        pending = self._webhook_pending()
        p = pending[pick % len(pending)]
        stored = payouts_store.get(p.id)
        assert stored is not None and stored.gateway_payout_id is not None, stored
        event = SandboxGateway(secret=self.stack.gateway_webhook_secret()).payout_event(
            stored.gateway_payout_id, p.amount, CURRENCY, f"machine:{p.id}", p.id
        )
        for _ in range(times):
            assert _deliver(self.stack, event) == 200
        p.status = "paid"

    # ------------------------------------------------------------ card charges lost

    @rule(user=USER, card=st.integers(0, 1), amount=st.integers(1, 5_000))
    def lost_top_up(self, user: int, card: int, amount: int) -> None:
        """A top-up whose every gateway answer is lost after the card was charged: 409, and
        nothing is credited (or guessed) until a retry asks again."""
        key, args = str(uuid.uuid4()), {"user": user, "card": card, "amount": amount}
        self.flaky.down = True
        try:
            outcome = _attempt(lambda: self._call("top_up", key, args))
        finally:
            self.flaky.down = False
        assert isinstance(outcome, IdempotencyInProgressError), outcome
        self.lost_top_ups.append((key, args))

    @precondition(lambda self: self.lost_top_ups)
    @rule(target=MoneyMachine.top_ups, pick=st.integers(0, 10_000))
    def retry_lost_top_up(self, pick: int) -> Any:
        """The client retries it with its key: the gateway is asked, the top-up succeeds."""
        key, args = self.lost_top_ups.pop(pick % len(self.lost_top_ups))
        body = self._send("top_up", key, **args)
        assert body is not None
        return body["id"]

    # ------------------------------------------------- processing and 3-D Secure charges

    @rule(
        targets=(MoneyMachine.payments, open_payments),
        parties=PARTIES,
        amount=st.integers(1, 3_000),
    )
    def processing_payment(self, parties: tuple[int, int], amount: int) -> Any:
        return self._open("card_payment", parties=parties, card=3, amount=amount,
                          status="processing")  # fmt: skip

    @rule(
        targets=(MoneyMachine.payments, open_payments),
        parties=PARTIES,
        amount=st.integers(1, 3_000),
    )
    def three_ds_payment(self, parties: tuple[int, int], amount: int) -> Any:
        return self._open("card_payment", parties=parties, card=4, amount=amount,
                          status="requires_action")  # fmt: skip

    @rule(targets=(MoneyMachine.top_ups, open_payments), user=USER, amount=st.integers(1, 5_000))
    def three_ds_top_up(self, user: int, amount: int) -> Any:
        return self._open("top_up", user=user, card=4, amount=amount, status="requires_action")

    def _open(self, op: str, *, status: str, **args: Any) -> str:
        key = str(uuid.uuid4())
        if op == "card_payment":
            args["capture"] = True
        outcome = _attempt(lambda: self._call(op, key, args))
        assert isinstance(outcome, Outcome), f"{op} {args}: {outcome!r}"
        self.sent.append(Sent(op, key, args, outcome))
        body = outcome.model.model_dump(mode="json")
        assert outcome.created and not outcome.replayed
        if op == "top_up":
            payer = payee = args["user"]
            kind = "top_up"
        else:
            payer, payee = args["parties"]
            kind = "payment"
        self._new_payment(body, payer=payer, payee=payee, by_card=True, amount=args["amount"],
                          kind=kind, status=status, captured=0)  # fmt: skip
        if status == "requires_action":
            assert body["next_action"]["type"] == "redirect_to_url", body
            self.actions[body["id"]] = body["next_action"]["url"].rsplit("/", 1)[1]
        else:
            assert body["next_action"] is None, body
        return str(body["id"])

    def _succeeds(self, payment_id: str) -> None:
        p = self.model[payment_id]
        p.status, p.captured = "succeeded", p.amount
        self.balances[p.payee] += p.amount
        self.money_in += p.amount

    @rule(payment=open_payments, passed=st.booleans())
    def complete_challenge(self, payment: str, passed: bool) -> None:
        """The card holder passes or fails the challenge: the sandbox's signed webhook, then
        the same event again and the opposite result (replays: nothing moves twice)."""
        if payment not in self.actions:
            return self.charge_webhook(payment, 2)
        gateway = SandboxGateway(secret=self.stack.gateway_webhook_secret())
        challenge = gateway.read_challenge(self.actions[payment])
        assert challenge is not None
        self.touched.add(payment)
        events = [SandboxGateway.challenge_event(challenge, passed)] * 2
        events.append(SandboxGateway.challenge_event(challenge, not passed) | {
            "id": f"evt_sbx_{uuid.uuid4().hex[:24]}"})  # fmt: skip
        for event in events:
            assert _deliver(self.stack, event) == 200
        p = self.model[payment]
        if p.status == "requires_action":
            if passed:
                self._succeeds(payment)
            else:
                p.status = "failed"
        return None

    @rule(payment=open_payments, times=st.integers(1, 2))
    def charge_webhook(self, payment: str, times: int) -> None:
        """A processing payment's signed `charge.succeeded`, delivered once or twice."""
        if payment in self.actions:
            return None
        stored = payment_store.get(payment)
        assert stored is not None and stored.charge_id is not None
        self.touched.add(payment)
        event = _event(payment, stored.charge_id, amount=self.model[payment].amount,
                       event_id=f"evt_sbx_machine_{payment[-12:].lower()}")  # fmt: skip
        for _ in range(times):
            assert _deliver(self.stack, event) == 200
        if self.model[payment].status == "processing":
            self._succeeds(payment)
        return None

    # ------------------------------------------------------------------- reconciliation

    @rule(late=st.booleans())
    def reconciliation_run(self, late: bool) -> None:
        """The scheduled run, 11 minutes later (settles processing payments and what a
        payout's gateway answers), or two days later (also fails what needs an action)."""
        now = clock.now() + (ABANDONED if late else RECONCILED)
        # The run's clock is that later time too, so the leases of lost requests have passed
        with mock.patch.object(clock, "now", lambda: now):
            report = reconcile.run(now=now, more=payouts_face.SWEEPS)
        assert not report.failed and not report.bounded, report.as_dict()
        # A top-up whose answer was lost is resumed as its retry would be: charged once,
        # credited once (the gateway answers the same charge under the same key)
        for key, args in self.lost_top_ups:
            record = idempotency.get(idempotency.Scope(self.members[args["user"]].id, key, ""))
            assert record is not None and record.status == "completed", (key, record)
            stored = payment_store.get(str(record.payment_id))
            assert stored is not None, record
            self._apply_top_up(stored.payment.model_dump(mode="json"), **args)
        self.lost_top_ups.clear()
        for pid, p in self.model.items():
            if p.status == "processing":
                self.touched.add(pid)
                self._succeeds(pid)
            elif p.status == "requires_action" and late:
                self.touched.add(pid)
                p.status = "failed"
        for payout in self.payout_model.values():
            if payout.status == "pending":
                self._gateway_says(payout)

    # ------------------------------------------------------------------------ invariants

    @invariant()
    def payouts_are_what_the_model_says(self) -> None:
        held = 0
        for p in self.payout_model.values():
            stored = payouts_store.get(p.id)
            assert stored is not None, p
            got = stored.payout
            assert (got.status, got.failure_code, got.amount) == (
                p.status, p.failure_code, p.amount,
            ), f"{p.id} stored as {got}, the model says {p}"  # fmt: skip
            assert stored.user_id == self.members[p.user].id
            if got.status in ("paid", "pending"):
                held += got.amount
        assert held == self.paid_out, f"stored payouts paid or pending {held} != {self.paid_out}"

    def teardown(self) -> None:
        super().teardown()  # settles the log and runs the audit
        # Settled exactly once: one log entry per party per outcome of a payment, top-up or payout,
        # and one for each party of every succeeded payment and every paid payout
        items = (dynamo.deserialize(raw) for raw in _log_entries())
        entries = [e for e in items if str(e["sk"]).startswith("SEQ#")]
        logged = Counter(
            (e["user_id"], e["payment_id"], e["status"]) for e in entries if e["type"] != "refund"
        )
        twice = [k for k, n in logged.items() if n > 1]
        assert not twice, f"logged more than once: {twice}"
        for pid, p in self.model.items():
            if p.status == "succeeded":
                for party in {p.payer, p.payee}:
                    assert logged[(self.members[party].id, pid, "succeeded")] == 1, (pid, party)
        for payout in self.payout_model.values():
            if payout.status == "paid":
                assert logged[(self.members[payout.user].id, payout.id, "paid")] == 1, payout


def _clear_requests() -> None:
    """No idempotency record left by an earlier sequence (the test may delete what no
    function may)."""
    client, table = aws.dynamodb(), get_settings().idempotency_table
    for page in client.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            client.delete_item(TableName=table, Key={"pk": item["pk"]})


def _member(stack: Any, user: Any) -> Member:
    numbers = (*CARDS, DECLINING, PROCESSING, THREE_DS)
    cards = tuple(add_card(stack, user, number) for number in numbers)
    return Member(user.id, Caller(user.id, user.session_id, "user"), cards)


@pytest.mark.parametrize("hot", [False, True], ids=["payees", "hot-payees"])
def test_money_is_conserved_with_payouts_3ds_webhooks_timeouts_and_reconciliation(
    stack, new_user, monkeypatch, hot
):
    """Also with every member a hot payee (credit shards that payouts and refunds empty)."""
    running = stack
    monkeypatch.setenv("CASHEW_FRAUD_MAX_PAYMENTS_10MIN", "1000000")
    monkeypatch.setenv("CASHEW_FRAUD_MAX_AMOUNT_24H", "1000000000000")
    get_settings.cache_clear()
    from cashew import gateways

    flaky = _Flaky(gateways.get_gateway())
    monkeypatch.setattr("cashew.payouts.settle.get_gateway", lambda: flaky)
    monkeypatch.setattr("cashew.payments.create.get_gateway", lambda: flaky)
    users = tuple(_member(stack, new_user(f"Member {i}")) for i in range(USERS))
    if hot:
        monkeypatch.setenv("CASHEW_HOT_PAYEES", ",".join(user.id for user in users))
        monkeypatch.setenv("CASHEW_HOT_PAYEE_SHARDS", "3")
        get_settings.cache_clear()

    class Machine(MoneyMachineV11):
        members = users
        stack = running

    Machine.flaky = flaky
    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=10,
            stateful_step_count=20,
            deadline=None,
            database=None,
            print_blob=True,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
    monkeypatch.undo()
    get_settings.cache_clear()
