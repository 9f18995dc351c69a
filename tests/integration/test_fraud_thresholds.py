"""Fraud screening's v1.1 settings through the handlers: the high-risk-flag card blocked by
default (CASHEW_FRAUD_BLOCK_RISKY_CARDS), amount thresholds per currency, and the payer's
velocity history in bounded per-minute buckets (read from items of the former format too)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cashew import clock, dynamo
from cashew.accounts import minute_buckets, store, velocity
from cashew.accounts.minute_buckets import KEPT_MINUTES, MinuteBucket, Tally
from cashew.config import get_settings
from cashew.payments import create
from tests.integration.conftest import add_card, balance, call_with_id, pay, top_up

RISKY = "4100000000000019"  # the sandbox's card with the gateway's high-risk flag


class CountingGateway:
    """The configured gateway, its charges counted."""

    def __init__(self, real: Any) -> None:
        self.real, self.charges = real, 0

    def authorise(self, *args: Any, **kwargs: Any) -> Any:
        self.charges += 1
        return self.real.authorise(*args, **kwargs)


@pytest.fixture
def gateway(monkeypatch) -> CountingGateway:
    counting = CountingGateway(create.get_gateway())
    monkeypatch.setattr(create, "get_gateway", lambda: counting)
    return counting


@pytest.fixture
def settings_env(monkeypatch):
    def set_env(**env: str) -> None:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield set_env
    monkeypatch.undo()
    get_settings.cache_clear()


def _top_up(stack, user, method_id: str, amount: int, currency: str):
    return stack.call(
        "CreateTopUpFunction",
        "payments/create_top_up.json",
        body={"amount": amount, "currency": currency, "payment_method_id": method_id},
        authorizer=user.authorizer,
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )


def _admin_view(stack, new_user, payment_id: str) -> dict[str, Any]:
    admin = new_user()
    admin.authorizer = {**admin.authorizer, "role": "admin"}
    reply = call_with_id(
        stack, "GetPaymentFunction", "payments/get_payment.json", payment_id,
        authorizer=admin.authorizer,
    )  # fmt: skip
    return dict(reply.body)


def _velocity_item(stack, user_id: str) -> dict[str, Any]:
    item = stack.clients("dynamodb").get_item(
        TableName=stack.env["CASHEW_ACCOUNTS_TABLE"],
        Key={"pk": {"S": f"USER#{user_id}"}, "sk": {"S": "VELOCITY"}},
        ConsistentRead=True,
    )["Item"]
    return dynamo.deserialize(item)


# --- the high-risk flag ------------------------------------------------------------------------


def test_a_risky_card_is_blocked_by_default_before_the_gateway(stack, new_user, gateway):
    # Given a user with the sandbox's high-risk card, and the default settings
    user = new_user()
    method = add_card(stack, user, RISKY)
    # When they top up with it
    reply = top_up(stack, user, method, 5_000)
    # Then it is a failed payment, blocked, that the gateway never saw and that moved nothing
    assert reply.status == 201, reply.body
    assert (reply.body["status"], reply.body["failure_code"]) == ("failed", "fraud_suspected")
    assert reply.body["risk"] == {"score": 100, "level": "blocked"}
    assert gateway.charges == 0
    assert balance(stack, user) == 0
    # ... the payer does not see why, an admin does
    assert "rules" not in reply.body["risk"]
    assert _admin_view(stack, new_user, reply.body["id"])["risk"]["rules"] == ["card_risk_flag"]
    # ... and a blocked attempt is not counted in the payer's history
    assert velocity.read(user.id).count_within(velocity.COUNT_WINDOW_MINUTES) == 0


def test_with_risky_cards_not_blocked_the_card_is_charged_and_elevated(
    stack, new_user, gateway, settings_env
):
    # Given CASHEW_FRAUD_BLOCK_RISKY_CARDS=false
    settings_env(CASHEW_FRAUD_BLOCK_RISKY_CARDS="false")
    user, payee = new_user(), new_user()
    method = add_card(stack, user, RISKY)
    # When they top up with the high-risk card, and pay with it
    topped = top_up(stack, user, method, 5_000)
    paid = pay(stack, user, payee.id, 1_000, source={"type": "card", "payment_method_id": method})
    # Then both are charged and succeed, marked elevated
    for reply in (topped, paid):
        assert (reply.body["status"], reply.body["failure_code"]) == ("succeeded", None)
        assert reply.body["risk"] == {"score": 60, "level": "elevated"}
    assert gateway.charges == 2
    assert balance(stack, user) == 5_000 and balance(stack, payee) == 1_000
    assert _admin_view(stack, new_user, topped.body["id"])["risk"]["rules"] == ["card_risk_flag"]


# --- thresholds per currency -------------------------------------------------------------------


def test_the_jpy_threshold_differs_from_the_usd_one(stack, new_user, settings_env):
    # Given a per-transaction limit of 500000 (minor units) in USD and 50000 in JPY
    settings_env(CASHEW_FRAUD_MAX_AMOUNT="USD=500000,JPY=50000")
    user = new_user()
    method = add_card(stack, user)
    # When they top up 50,000 and 50,001 in each currency
    replies = {
        (currency, amount): _top_up(stack, user, method, amount, currency).body
        for currency in ("JPY", "USD")
        for amount in (50_000, 50_001)
    }
    # Then only JPY 50,001 is over its currency's limit, and it alone moves nothing
    outcomes = {k: (r["status"], r["failure_code"]) for k, r in replies.items()}
    assert outcomes == {
        ("JPY", 50_000): ("succeeded", None),
        ("JPY", 50_001): ("failed", "fraud_suspected"),
        ("USD", 50_000): ("succeeded", None),
        ("USD", 50_001): ("succeeded", None),
    }
    assert balance(stack, user, "JPY") == 50_000
    assert balance(stack, user, "USD") == 100_001
    blocked = replies[("JPY", 50_001)]["id"]
    assert _admin_view(stack, new_user, blocked)["risk"]["rules"] == ["max_amount"]


def test_a_currency_the_setting_does_not_name_has_the_documented_default(
    stack, new_user, settings_env
):
    # Given a 24-hour amount limit named for JPY only: EUR keeps the default 2,000,000
    settings_env(CASHEW_FRAUD_MAX_AMOUNT_24H="JPY=1000", CASHEW_FRAUD_MAX_AMOUNT="5000000")
    user = new_user()
    method = add_card(stack, user)
    # When they top up 2,000,000 EUR, then 1 more, and 1000 JPY, then 1 more
    eur = [_top_up(stack, user, method, a, "EUR").body["status"] for a in (2_000_000, 1)]
    jpy = [_top_up(stack, user, method, a, "JPY").body["status"] for a in (1_000, 1)]
    # Then each currency is blocked just past its own limit
    assert eur == ["succeeded", "failed"] and jpy == ["succeeded", "failed"]


# --- the history in buckets ------------------------------------------------------------------


def test_a_history_of_the_former_format_is_read_and_rewritten_in_buckets(
    stack, new_user, settings_env
):
    # Given at most 4 attempts in 10 minutes, and a payer whose history item is of the former
    # format: three attempts listed in the last 10 minutes, one 11 minutes ago
    settings_env(CASHEW_FRAUD_MAX_PAYMENTS_10MIN="4")
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 1_000)  # the first attempt, in buckets
    now_ms = int(clock.now().timestamp() * 1000)
    recent = [[now_ms - ago_s * 1000, 10, "USD"] for ago_s in (11 * 60, 120, 60, 1)]
    stack.clients("dynamodb").put_item(
        TableName=stack.env["CASHEW_ACCOUNTS_TABLE"],
        Item=dynamo.serialize(
            {"pk": f"USER#{payer.id}", "sk": "VELOCITY", "attempts": recent, "version": 7}
        ),
    )
    # When the payer pays twice
    first, second = pay(stack, payer, payee.id, 100), pay(stack, payer, payee.id, 100)
    # Then the listed attempts counted: the first payment is the 4th attempt in 10 minutes,
    # the second the 5th, blocked
    assert first.body["status"] == "succeeded"
    assert (second.body["status"], second.body["failure_code"]) == ("failed", "fraud_suspected")
    # ... and the item is now buckets (every listed attempt kept in them), the list gone
    item = _velocity_item(stack, payer.id)
    assert "attempts" not in item and item["version"] == 8
    history = velocity.read(payer.id)
    assert history.count_within(velocity.DAY_MINUTES) == 5
    assert history.amount_within(velocity.DAY_MINUTES, "USD") == 4 * 10 + 100


def test_recording_through_dynamodb_forgets_the_minute_a_day_old_and_checks_the_version(
    stack, new_user, monkeypatch
):
    # Given a payer whose history (written by the velocity write) has buckets 1440 and 1439
    # minutes before this one, and one 5 minutes before, in three currencies
    payer = new_user()
    now = datetime(2026, 12, 2, 10, 0, 30, tzinfo=UTC)
    monkeypatch.setattr(clock, "now", lambda: now)
    minute = minute_buckets.minute_of(int(now.timestamp() * 1000))
    earlier = (
        MinuteBucket(minute - KEPT_MINUTES, {"USD": Tally(3, 300)}),
        MinuteBucket(minute - KEPT_MINUTES + 1, {"EUR": Tally(2, 20), "USD": Tally(1, 1)}),
        MinuteBucket(minute - 5, {"JPY": Tally(1, 7)}),
    )
    dynamo.Transaction().add("history", store.velocity_item(payer.id, 0, earlier)).write()
    # When the payer's history is read and the next attempt recorded in the same conditional
    # write as the payments do
    history = velocity.read(payer.id)
    assert history.buckets == earlier
    assert history.count_within(velocity.DAY_MINUTES) == 4  # the minute 1440 back is out
    assert history.amount_within(velocity.DAY_MINUTES, "USD") == 1
    dynamo.Transaction().add("history", history.record_item(5, "USD")).write()
    # Then the item holds the buckets any window reaches, and this minute's
    item = _velocity_item(stack, payer.id)
    assert item["version"] == 2
    assert item["buckets"] == [
        [minute - KEPT_MINUTES + 1, {"EUR": [2, 20], "USD": [1, 1]}],
        [minute - 5, {"JPY": [1, 7]}],
        [minute, {"USD": [1, 5]}],
    ]
    # ... and a write against the history read before is refused (the version moved)
    with pytest.raises(dynamo.TransactionCanceled):
        dynamo.Transaction().add("history", history.record_item(5, "USD")).write()
    assert _velocity_item(stack, payer.id)["version"] == 2


def test_the_day_window_forgets_attempts_a_day_old(stack, new_user, settings_env, monkeypatch):
    # Given at most 1000 a day, and a payer who paid 1000 by card yesterday at 10:00:30
    settings_env(CASHEW_FRAUD_MAX_AMOUNT_24H="1000")
    payer = new_user()
    method = add_card(stack, payer)
    yesterday = datetime(2026, 12, 1, 10, 0, 30, tzinfo=UTC)
    monkeypatch.setattr(clock, "now", lambda: yesterday)
    assert top_up(stack, payer, method, 1_000).body["status"] == "succeeded"
    # When they top up 1 at 09:59:59 today (minute 09:59: 1440 minutes from 10:00 yesterday
    # in the current one) and at 10:00:00 (the 1441st minute)
    at_0959 = yesterday + timedelta(hours=23, minutes=59, seconds=29)
    monkeypatch.setattr(clock, "now", lambda: at_0959)
    early = top_up(stack, payer, method, 1).body
    monkeypatch.setattr(clock, "now", lambda: at_0959 + timedelta(seconds=1))
    on_time = top_up(stack, payer, method, 1).body
    # Then the first still counts yesterday's 1000 (blocked), the second does not
    assert (early["status"], early["failure_code"]) == ("failed", "fraud_suspected")
    assert on_time["status"] == "succeeded"
