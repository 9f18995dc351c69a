"""Payouts through their handlers, against the embedded AWS of template.yaml: every sandbox
card, insufficient funds, idempotent replays, unknown outcomes, webhooks, and the race."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from cashew.accounts import store as accounts_store
from cashew.gateways.base import GatewayOutcomeUnknownError, sign_webhook
from cashew.gateways.sandbox import SandboxGateway
from cashew.payments import idempotency
from cashew.payouts import settle
from cashew.payouts import store as payouts_store
from tests.integration.conftest import Stack, User, add_card, balance, call_with_id, top_up

CARDS = [
    ("4242424242424242", "paid", None),
    ("5555555555554444", "paid", None),
    ("4000000000000002", "failed", "card_declined"),
    ("4000000000009995", "failed", "insufficient_funds"),
    ("4000000000000069", "failed", "expired_card"),
    ("4000000000000119", "failed", "gateway_error"),
    ("4000000000003220", "pending", None),
    ("4000000000003063", "paid", None),
    # the gateway's high-risk flag: screened like payments, blocked by default
    ("4100000000000019", "failed", "fraud_suspected"),
]


def payout(
    stack: Stack,
    user: User,
    amount: int,
    method_id: str | None = None,
    key: str | None = None,
    currency: str = "USD",
) -> Any:
    body: dict[str, Any] = {"amount": amount, "currency": currency}
    if method_id is not None:
        body["payment_method_id"] = method_id
    return stack.call(
        "CreatePayoutFunction",
        "payouts/create_payout.json",
        body=body,
        authorizer=user.authorizer,
        headers={"Idempotency-Key": key or str(uuid.uuid4())},
    )


def funded(stack: Stack, new_user: Any, amount: int = 10_000) -> tuple[User, str]:
    """A user whose balance holds `amount` USD, topped up by a 4242 card (returned)."""
    user = new_user()
    card = add_card(stack, user)
    assert top_up(stack, user, card, amount).body["status"] == "succeeded"
    return user, card


def payout_webhook(stack: Stack, payout_id: str) -> tuple[bytes, str]:
    """The sandbox's signed `payout.paid` event of a pending payout, as it would deliver it."""
    stored = payouts_store.get(payout_id)
    assert stored is not None and stored.gateway_payout_id is not None
    gateway = SandboxGateway(secret=stack.gateway_webhook_secret())
    p = stored.payout
    event = gateway.payout_event(stored.gateway_payout_id, p.amount, p.currency, "k", p.id)
    event["id"] = f"evt_sbx_{uuid.uuid4().hex[:24]}"
    body = json.dumps(event).encode()
    return body, sign_webhook(body, stack.gateway_webhook_secret(), int(time.time()))


def deliver(stack: Stack, body: bytes, signature: str) -> Any:
    return stack.call(
        "GatewayWebhookFunction",
        "payments/gateway_webhook.json",
        raw_body=body.decode(),
        headers={"Gateway-Signature": signature},
    )


@pytest.mark.parametrize(("number", "status", "code"), CARDS)
def test_every_sandbox_card_pays_out_as_its_charges_behave(stack, new_user, number, status, code):
    # Given a user with 100.00 and a card of the table
    user, _ = funded(stack, new_user)
    card = add_card(stack, user, number)
    # When they pay 30.00 out to it
    reply = payout(stack, user, 3_000, card)
    # Then the payout is as the card says, and only a failure gives the money back
    assert reply.status == 201, reply.body
    body = reply.body
    assert body["id"].startswith("po_") and body["payment_method_id"] == card
    assert (body["status"], body["failure_code"]) == (status, code)
    assert balance(stack, user) == (10_000 if status == "failed" else 7_000)
    # ... and GET answers the same payout
    got = call_with_id(stack, "GetPayoutFunction", "payouts/get_payout.json", body["id"],
                       authorizer=user.authorizer)  # fmt: skip
    assert got.status == 200 and got.body == body


def test_too_little_balance_fails_with_insufficient_funds_and_moves_nothing(stack, new_user):
    user, card = funded(stack, new_user, 1_000)
    reply = payout(stack, user, 1_001, card)
    assert reply.status == 201
    assert (reply.body["status"], reply.body["failure_code"]) == ("failed", "insufficient_funds")
    assert balance(stack, user) == 1_000
    assert payout(stack, user, 1_000).body["status"] == "paid"  # the default card
    assert balance(stack, user) == 0


def test_a_replay_returns_the_same_payout_and_moves_nothing_twice(stack, new_user):
    user, card = funded(stack, new_user)
    key = str(uuid.uuid4())
    first = payout(stack, user, 2_500, card, key)
    again = payout(stack, user, 2_500, card, key)
    assert again.status == 201 and again.body == first.body
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert balance(stack, user) == 7_500
    reused = payout(stack, user, 2_600, card, key)
    assert reused.status == 422 and reused.body["code"] == "idempotency_key_reused"
    assert balance(stack, user) == 7_500


def test_no_method_and_no_default_names_the_field_and_foreign_methods_are_404(stack, new_user):
    lonely, (owner, owners_card) = new_user(), funded(stack, new_user)
    missing = payout(stack, lonely, 100)
    assert missing.status == 422 and missing.body["errors"][0]["field"] == "payment_method_id"
    foreign = payout(stack, lonely, 100, owners_card)
    assert foreign.status == 404
    # ... and another user's payout is not found either
    mine = payout(stack, owner, 100, owners_card).body
    theirs = call_with_id(stack, "GetPayoutFunction", "payouts/get_payout.json", mine["id"],
                          authorizer=lonely.authorizer)  # fmt: skip
    assert theirs.status == 404


def test_an_expired_method_is_refused_before_anything_moves(stack, new_user):
    # Given a funded user whose payout card is expired
    user, _ = funded(stack, new_user)
    card = add_card(stack, user)
    assert accounts_store.mark_expired(user.id, card)
    key = str(uuid.uuid4())
    # When they pay out to it
    reply = payout(stack, user, 100, card, key)
    # Then it is refused before the gateway, naming the field, and nothing moved or stayed
    assert reply.status == 422 and reply.body["code"] == "payment_method_unusable"
    assert reply.body["errors"][0]["field"] == "payment_method_id"
    assert balance(stack, user) == 10_000
    assert payouts_store.list_payouts(user.id, 10, None).data == []
    assert idempotency.get(idempotency.scope(user.id, key, "POST /v1/payouts", {})) is None


def test_the_list_pages_the_callers_payouts_newest_first(stack, new_user):
    user, card = funded(stack, new_user)
    other, other_card = funded(stack, new_user)
    made = [payout(stack, user, 100 + i, card).body["id"] for i in range(3)]
    payout(stack, other, 100, other_card)
    first = stack.call("ListPayoutsFunction", "payouts/list_payouts.json",
                       authorizer=user.authorizer, query={"limit": "2"})  # fmt: skip
    assert first.status == 200 and first.body["has_more"]
    rest = stack.call("ListPayoutsFunction", "payouts/list_payouts.json",
                      authorizer=user.authorizer,
                      query={"limit": "2", "cursor": first.body["next_cursor"]})  # fmt: skip
    listed = [p["id"] for p in first.body["data"] + rest.body["data"]]
    assert listed == made[::-1]


def test_a_pending_payout_is_settled_once_by_the_webhook_and_a_replay_does_nothing(stack, new_user):
    user, _ = funded(stack, new_user)
    card = add_card(stack, user, "4000000000003220")
    pending = payout(stack, user, 4_000, card).body
    assert pending["status"] == "pending" and balance(stack, user) == 6_000
    body, signature = payout_webhook(stack, pending["id"])
    assert deliver(stack, body, signature).status == 200
    stored = payouts_store.get(pending["id"])
    assert stored is not None and stored.payout.status == "paid"
    assert deliver(stack, body, signature).status == 200  # the same event again
    assert payouts_store.get(pending["id"]).payout.status == "paid"
    assert balance(stack, user) == 6_000


def test_a_failed_webhook_credits_back_once_even_replayed_or_repeated(stack, new_user):
    user, _ = funded(stack, new_user)
    card = add_card(stack, user, "4000000000003220")
    pending = payout(stack, user, 4_000, card).body
    stored = payouts_store.get(pending["id"])
    secret = stack.gateway_webhook_secret()

    def failure(event_id: str) -> tuple[bytes, str]:
        event = {"id": event_id, "type": "payout.failed", "data": {
            "gateway_payout_id": stored.gateway_payout_id, "payout_id": pending["id"],
            "failure_code": "card_declined", "amount": 4_000, "currency": "USD"}}  # fmt: skip
        raw = json.dumps(event).encode()
        return raw, sign_webhook(raw, secret, int(time.time()))

    once = failure(f"evt_sbx_{uuid.uuid4().hex[:24]}")
    for body, signature in (once, once, failure(f"evt_sbx_{uuid.uuid4().hex[:24]}")):
        assert deliver(stack, body, signature).status == 200
    settled = payouts_store.get(pending["id"]).payout
    assert (settled.status, settled.failure_code) == ("failed", "card_declined")
    assert balance(stack, user) == 10_000  # credited back once


def test_a_webhook_for_another_amount_changes_nothing(stack, new_user):
    user, _ = funded(stack, new_user)
    card = add_card(stack, user, "4000000000003220")
    pending = payout(stack, user, 4_000, card).body
    stored = payouts_store.get(pending["id"])
    event = {"id": f"evt_sbx_{uuid.uuid4().hex[:24]}", "type": "payout.failed", "data": {
        "gateway_payout_id": stored.gateway_payout_id, "payout_id": pending["id"],
        "failure_code": "card_declined", "amount": 9_000, "currency": "USD"}}  # fmt: skip
    raw = json.dumps(event).encode()
    signature = sign_webhook(raw, stack.gateway_webhook_secret(), int(time.time()))
    assert deliver(stack, raw, signature).status == 200
    assert payouts_store.get(pending["id"]).payout.status == "pending"
    assert balance(stack, user) == 6_000


class _Flaky:
    """The stack's gateway, whose payouts time out (outcome unknown) while `down`."""

    def __init__(self, real: Any) -> None:
        self.real, self.down, self.asked = real, True, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def payout(self, *args: Any, **kwargs: Any) -> Any:
        self.asked += 1
        if self.down:
            raise GatewayOutcomeUnknownError("timed out after sending")
        return self.real.payout(*args, **kwargs)


@pytest.fixture
def flaky(monkeypatch) -> _Flaky:
    from cashew import gateways

    flaky = _Flaky(gateways.get_gateway())
    monkeypatch.setattr("cashew.payouts.settle.get_gateway", lambda: flaky)
    return flaky


def test_an_unknown_outcome_stays_pending_until_a_retry_with_the_key_asks(stack, new_user, flaky):
    user, card = funded(stack, new_user)
    key = str(uuid.uuid4())
    # When the gateway times out on every attempt
    first = payout(stack, user, 3_000, card, key)
    # Then the request says to retry, the payout is pending and its money held, never guessed
    assert first.status == 409 and first.body["code"] == "idempotency_in_progress"
    listed = stack.call("ListPayoutsFunction", "payouts/list_payouts.json",
                        authorizer=user.authorizer).body["data"]  # fmt: skip
    assert [p["status"] for p in listed] == ["pending"]
    assert balance(stack, user) == 7_000
    # When the gateway is back and the client retries with the same key
    flaky.down = False
    retry = payout(stack, user, 3_000, card, key)
    assert retry.status == 201 and retry.body["status"] == "paid"
    assert retry.body["id"] == listed[0]["id"]
    assert balance(stack, user) == 7_000


def test_a_retry_resumes_even_when_the_held_money_leaves_too_little_for_another(
    stack, new_user, flaky
):
    # Given a payout of 60.00 of 100.00 whose outcome is unknown: 40.00 left, held 60.00
    user, card = funded(stack, new_user)
    key = str(uuid.uuid4())
    assert payout(stack, user, 6_000, card, key).status == 409
    assert balance(stack, user) == 4_000
    # When the client retries with the same key, the gateway back
    flaky.down = False
    retry = payout(stack, user, 6_000, card, key)
    # Then the retry resumes that payout (not a new one refused for insufficient funds)
    assert retry.status == 201, retry.body
    assert (retry.body["status"], retry.body["failure_code"]) == ("paid", None)
    assert balance(stack, user) == 4_000
    assert len(payouts_store.list_payouts(user.id, 10, None).data) == 1


def test_settle_pending_asks_the_gateway_under_the_payouts_key(stack, new_user, flaky):
    user, card = funded(stack, new_user)
    assert payout(stack, user, 3_000, card).status == 409
    payout_id = stack.call("ListPayoutsFunction", "payouts/list_payouts.json",
                           authorizer=user.authorizer).body["data"][0]["id"]  # fmt: skip
    assert settle.settle_pending(payout_id) == "unknown"
    flaky.down = False
    assert settle.settle_pending(payout_id) == "paid"
    assert settle.settle_pending(payout_id) == "not_pending"
    assert settle.settle_pending("po_01J0000000000000000000000A") == "not_found"
    assert payouts_store.get(payout_id).payout.status == "paid"
    assert balance(stack, user) == 7_000


def test_settle_pending_credits_a_failed_payout_back_once(stack, new_user, flaky):
    user, _ = funded(stack, new_user)
    card = add_card(stack, user, "4000000000000002")
    assert payout(stack, user, 3_000, card).status == 409
    payout_id = payouts_store.list_payouts(user.id, 1, None).data[0].id
    flaky.down = False
    assert settle.settle_pending(payout_id) == "failed"
    assert settle.settle_pending(payout_id) == "not_pending"
    assert balance(stack, user) == 10_000


def test_eight_concurrent_payouts_from_one_balance_never_overdraw(stack, new_user):
    # Given 100.00 and eight payouts of 30.00 at once
    user, card = funded(stack, new_user)
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: payout(stack, user, 3_000, card), range(8)))
    # Then at most three are paid, the rest fail for insufficient funds (or are told to retry)
    statuses = [r.body.get("status") for r in replies if r.status == 201]
    assert all(r.status in (201, 409, 429) for r in replies), [r.body for r in replies]
    paid = statuses.count("paid")
    assert 1 <= paid <= 3
    assert set(statuses) <= {"paid", "failed"}
    # ... the balance never went below zero, and what left it is exactly what was paid
    stored = payouts_store.list_payouts(user.id, 100, None).data
    moved = sum(p.amount for p in stored if p.status in ("paid", "pending"))
    assert balance(stack, user) == 10_000 - moved >= 0
    assert moved == 3_000 * paid


def test_a_pending_payout_nobody_settles_is_settled_by_reconciliation(stack, new_user, flaky):
    # Given a payout whose outcome is unknown, and no retry and no webhook coming
    from datetime import timedelta

    from cashew import clock
    from cashew.payments import reconcile
    from cashew.payouts import face

    user, card = funded(stack, new_user)
    assert payout(stack, user, 3_000, card).status == 409
    payout_id = payouts_store.list_payouts(user.id, 1, None).data[0].id
    flaky.down = False
    # When a run comes before CASHEW_RECONCILE_AFTER, Then it is left
    reconcile.run(now=clock.now() + timedelta(minutes=5), more=face.SWEEPS)
    assert payouts_store.get(payout_id).payout.status == "pending"
    # When one comes after it, Then the gateway is asked and the payout settled, once
    later = clock.now() + timedelta(minutes=11)
    report = reconcile.run(now=later, more=face.SWEEPS)
    assert report.settled.get("payout#pending", 0) >= 1
    assert payouts_store.get(payout_id).payout.status == "paid"
    assert balance(stack, user) == 7_000
    # And it has left the index: a later run does not see it again
    due = payments_due("payout#pending", clock.rfc3339(later + timedelta(days=1)))
    assert payout_id not in due


def payments_due(open_status: str, before: str) -> list[str]:
    from cashew.payments import store

    return list(store.due(open_status, before, 1000))
