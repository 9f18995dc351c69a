"""Fraud screening through the handlers: the velocity rules hold under concurrency, a blocked
payment moves nothing, and the rules that fired are shown to admins only."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from cashew.config import get_settings
from cashew.identity import Caller
from cashew.payments import create
from cashew.payments.models import PaymentRequest
from tests.integration.conftest import add_card, balance, call_with_id, pay, top_up


@pytest.fixture
def limits(monkeypatch):
    def set_limits(**env: str) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield set_limits
    monkeypatch.undo()
    get_settings.cache_clear()


def _read(stack, user, payment_id):
    return call_with_id(
        stack, "GetPaymentFunction", "payments/get_payment.json", payment_id,
        authorizer=user.authorizer,
    )  # fmt: skip


def test_the_payment_over_the_10_minute_count_is_blocked_and_moves_nothing(stack, new_user, limits):
    # Given at most 3 attempts per payer in 10 minutes, and a payer whose top-up was one
    limits(CASHEW_FRAUD_MAX_PAYMENTS_10MIN="3")
    payer, payee, admin = new_user(), new_user(), new_user()
    admin.authorizer = {**admin.authorizer, "role": "admin"}
    top_up(stack, payer, add_card(stack, payer), 1_000)
    # When the payer pays three times
    first, second, third = (pay(stack, payer, payee.id, 100) for _ in range(3))
    # Then the first two go through and the third (attempt number 4) is blocked
    assert [first.body["status"], second.body["status"]] == ["succeeded", "succeeded"]
    assert third.status == 201
    assert (third.body["status"], third.body["failure_code"]) == ("failed", "fraud_suspected")
    assert third.body["risk"] == {"score": 100, "level": "blocked"}
    assert balance(stack, payer) == 800 and balance(stack, payee) == 200
    # ... the payer does not see which rule fired, an admin does
    assert "rules" not in _read(stack, payer, third.body["id"]).body["risk"]
    seen_by_admin = _read(stack, admin, third.body["id"]).body["risk"]
    assert seen_by_admin["rules"] == ["velocity_count_10min"]
    assert _read(stack, admin, first.body["id"]).body["risk"]["rules"] == []
    # ... and a retry of the blocked request replays the refusal
    key = str(uuid.uuid4())
    refused = pay(stack, payer, payee.id, 100, key)
    assert pay(stack, payer, payee.id, 100, key).body == refused.body


def test_concurrent_payments_cannot_slip_past_the_count(stack, new_user, limits):
    # Given at most 4 attempts in 10 minutes, and a payer whose top-up was the first
    limits(CASHEW_FRAUD_MAX_PAYMENTS_10MIN="4")
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 5_000)
    caller = Caller(payer.id, payer.session_id, "user")
    request = PaymentRequest.model_validate(
        {"amount": 100, "currency": "USD", "payee_id": payee.id, "source": {"type": "balance"}}
    )
    # When 8 payments race, each with its own key
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(lambda i: create.create_payment(caller, request, f"velocity-{i}"), range(8))
        )
    # Then exactly 3 were admitted, the others blocked, and exactly 3 moved money
    bodies = [r.model.model_dump_json() for r in results]
    assert sum('"status":"succeeded"' in b for b in bodies) == 3
    assert sum('"failure_code":"fraud_suspected"' in b for b in bodies) == 5
    assert balance(stack, payer) == 4_700 and balance(stack, payee) == 300


def test_the_24_hour_amount_adds_the_attempts_of_the_day(stack, new_user, limits):
    # Given at most 1000 per payer per day, and a payer who topped up 600
    limits(CASHEW_FRAUD_MAX_AMOUNT_24H="1000")
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 600)
    # When they pay 400 (1000 in all), then 1 more
    exactly = pay(stack, payer, payee.id, 400)
    over = pay(stack, payer, payee.id, 1)
    # Then the first is at the limit and goes through, the second is over it
    assert exactly.body["status"] == "succeeded"
    assert (over.body["status"], over.body["failure_code"]) == ("failed", "fraud_suspected")
    assert balance(stack, payer) == 200


def test_declined_card_attempts_count_and_the_next_is_blocked_before_the_gateway(
    stack, new_user, limits
):
    # Given at most 2 attempts in 10 minutes, and a card the issuer declines
    limits(CASHEW_FRAUD_MAX_PAYMENTS_10MIN="2")
    payer = new_user()
    declined = add_card(stack, payer, "4000000000000002")
    # When the payer tries it three times (card testing)
    replies = [top_up(stack, payer, declined, 100).body for _ in range(3)]
    # Then the issuer declined two, and screening blocked the third before the gateway
    assert [r["failure_code"] for r in replies] == [
        "card_declined", "card_declined", "fraud_suspected",
    ]  # fmt: skip
    assert balance(stack, payer) == 0
