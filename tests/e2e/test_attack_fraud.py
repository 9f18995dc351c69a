"""Attacks on fraud screening, over HTTP against the local stack (its default settings): a
high-risk card pushed through by retrying, by paying with it or by splitting the amount, and
card testing spread over currencies to slip past the count."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.e2e.conftest import add_card, balance, launch

RISKY = "4100000000000019"  # tokenises with the gateway's high-risk flag set
DECLINED = "4000000000000002"
MAX_PAYMENTS_10MIN = 30  # API.md's default


def _post(stack, user, path: str, body: dict, key: str | None = None):
    reply = stack.request(
        "POST", path, user.token, headers={"Idempotency-Key": key or str(uuid.uuid4())}, json=body
    )
    assert reply.status_code == 201, reply.text
    return reply.json()


def test_a_risky_card_is_refused_however_it_is_tried(stack, new_user):
    # Given a payer who added the high-risk card, and a payee
    payer, payee = new_user(), new_user()
    risky = add_card(stack, payer, RISKY)
    top_up = {"amount": 5_000, "currency": "USD", "payment_method_id": risky}
    card = {"type": "card", "payment_method_id": risky}
    # When they top up with it, retry with the same key, try again with new keys and small
    # amounts, in another currency, and pay another user with it
    key = str(uuid.uuid4())
    first = _post(stack, payer, "/v1/top-ups", top_up, key)
    attempts = [
        _post(stack, payer, "/v1/top-ups", top_up, key),
        _post(stack, payer, "/v1/top-ups", {**top_up, "amount": 1}),
        _post(stack, payer, "/v1/top-ups", {**top_up, "currency": "JPY"}),
        _post(
            stack, payer, "/v1/payments",
            {"amount": 100, "currency": "USD", "payee_id": payee.id, "source": card},
        ),
    ]  # fmt: skip
    # Then every one is blocked before the gateway, the retry replays the first, nothing moves
    assert attempts[0] == first
    for blocked in (first, *attempts):
        assert (blocked["status"], blocked["failure_code"]) == ("failed", "fraud_suspected")
        assert blocked["risk"] == {"score": 100, "level": "blocked"}  # no rules for the payer
    assert balance(stack, payer) == 0 and balance(stack, payer, "JPY") == 0
    assert balance(stack, payee) == 0
    shown = stack.request("GET", f"/v1/payments/{first['id']}", payer.token).json()
    assert "rules" not in shown["risk"]


def test_card_testing_spread_over_currencies_is_stopped_at_the_count(stack, new_user):
    # Given a payer testing a card the issuer declines, changing currency at each attempt
    payer = new_user()
    declined = add_card(stack, payer, DECLINED)
    currencies = ["USD", "EUR", "GBP", "JPY"]
    # When they try it one more time than the 10-minute count allows
    replies = [
        _post(
            stack, payer, "/v1/top-ups",
            {"amount": 100, "currency": currencies[i % 4], "payment_method_id": declined},
        )
        for i in range(MAX_PAYMENTS_10MIN + 1)
    ]  # fmt: skip
    # Then the issuer declined the first 30, and screening blocked the 31st before the gateway
    codes = [r["failure_code"] for r in replies]
    assert codes == ["card_declined"] * MAX_PAYMENTS_10MIN + ["fraud_suspected"]
    # ... and a fresh approved card does not reset the count: it is the payer's
    fresh = add_card(stack, payer)
    again = _post(
        stack, payer, "/v1/top-ups", {"amount": 100, "currency": "USD", "payment_method_id": fresh}
    )
    assert again["failure_code"] == "fraud_suspected"
    assert balance(stack, payer) == 0


def test_a_malformed_threshold_stops_the_stack_at_start(tmp_path: Path) -> None:
    # Given the local stack started with a per-currency threshold naming no real currency
    with launch(tmp_path / "dev.log", CASHEW_FRAUD_MAX_AMOUNT="USD=500000,YEN=50000") as launched:
        # Then it exits instead of serving, and says which variable and why
        assert launched.exit_code is not None, "started with a malformed fraud threshold"
        assert launched.exit_code != 0
        output = " ".join(launched.stack.logs().split())
        assert "cannot start" in output
        assert "CASHEW_FRAUD_MAX_AMOUNT" in output and "'YEN' is not a currency" in output
