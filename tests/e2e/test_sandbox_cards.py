"""Every card of API.md's sandbox table, over HTTP: a top-up with each, and what follows."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.e2e.conftest import add_card, balance

CARDS = [
    # number, status right away, failure_code, brand, risk level
    ("4242424242424242", "succeeded", None, "visa", "normal"),
    ("5555555555554444", "succeeded", None, "mastercard", "normal"),
    ("4000000000000002", "failed", "card_declined", "visa", "normal"),
    ("4000000000009995", "failed", "insufficient_funds", "visa", "normal"),
    ("4000000000000069", "failed", "expired_card", "visa", "normal"),
    ("4000000000000119", "failed", "gateway_error", "visa", "normal"),
    ("4000000000003220", "processing", None, "visa", "normal"),
    # the gateway's high-risk flag: blocked by default (CASHEW_FRAUD_BLOCK_RISKY_CARDS)
    ("4100000000000019", "failed", "fraud_suspected", "visa", "blocked"),
    ("4000000000003063", "requires_action", None, "visa", "normal"),
]


@pytest.mark.parametrize(("number", "status", "failure_code", "brand", "risk"), CARDS)
def test_a_top_up_with_each_sandbox_card(
    stack, new_user, number, status, failure_code, brand, risk
):
    # Given a user who added the card (every card of the table tokenises)
    user = new_user()
    method = add_card(stack, user, number)
    shown = stack.request("GET", f"/v1/users/me/payment-methods/{method}", user.token).json()
    assert (shown["card"]["brand"], shown["card"]["last4"]) == (brand, number[-4:])
    # When they top up 50.00
    reply = stack.request(
        "POST", "/v1/top-ups", user.token, headers={"Idempotency-Key": str(uuid.uuid4())},
        json={"amount": 5_000, "currency": "USD", "payment_method_id": method},
    )  # fmt: skip
    # Then the outcome is the card's, and only money that was charged is credited
    assert reply.status_code == 201, reply.text
    top_up = reply.json()
    assert (top_up["status"], top_up["failure_code"], top_up["risk"]["level"]) == (
        status, failure_code, risk,
    )  # fmt: skip
    if status == "processing":  # the sandbox answers by signed webhook a few seconds later
        deadline = time.monotonic() + 20
        while status == "processing" and time.monotonic() < deadline:
            time.sleep(0.5)
            status = stack.request("GET", f"/v1/payments/{top_up['id']}", user.token).json()[
                "status"
            ]
        assert status == "succeeded"
    assert balance(stack, user) == (5_000 if status == "succeeded" else 0)
