"""Charging payment methods (API.md v1.1, Payment methods after transactions): a method that
is not active, or past its expiry month, is 422 payment_method_unusable before the gateway;
an `expired_card` decline makes it expired; a successful charge sets last_used_at, after the
money and without ever holding up the answer; an omitted payment_method_id is the default."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cashew.accounts import face, store, velocity
from cashew.payments import create
from tests.integration.conftest import add_card, call_with_id, pay, top_up
from tests.support.lambda_runtime import Reply

EXPIRED_CARD = "4000000000000069"  # the sandbox declines its charges with expired_card


class CountingGateway:
    """The configured gateway, with its charges counted (and a hook run before each)."""

    def __init__(self, real: Any, before: Any = None) -> None:
        self.real, self.before, self.charges = real, before, 0

    def authorise(self, *args: Any, **kwargs: Any) -> Any:
        self.charges += 1
        if self.before is not None:
            self.before()
        return self.real.authorise(*args, **kwargs)


@pytest.fixture
def gateway(monkeypatch) -> CountingGateway:
    counting = CountingGateway(create.get_gateway())
    monkeypatch.setattr(create, "get_gateway", lambda: counting)
    return counting


def method_of(stack, user, method_id: str) -> dict[str, Any]:
    reply = call_with_id(
        stack, "GetPaymentMethodFunction", "accounts/get_payment_method.json", method_id,
        authorizer=user.authorizer,
    )  # fmt: skip
    assert reply.status == 200, reply.body
    return dict(reply.body)


def balance(stack, user) -> int:
    reply = stack.call(
        "ListBalancesFunction", "accounts/list_balances.json", authorizer=user.authorizer
    )
    return sum(b["available"] for b in reply.body["data"] if b["currency"] == "USD")


def payments_of(stack, user) -> list[dict[str, Any]]:
    reply = stack.call(
        "ListPaymentsFunction", "payments/list_payments.json", authorizer=user.authorizer,
        query={"role": "payer", "limit": "100"},
    )  # fmt: skip
    return list(reply.body["data"])


def top_up_default(stack, user, amount: int, key: str | None = None) -> Reply:
    return stack.call(
        "CreateTopUpFunction", "payments/create_top_up.json",
        body={"amount": amount, "currency": "USD"}, authorizer=user.authorizer,
        headers={"Idempotency-Key": key or str(uuid.uuid4())},
    )  # fmt: skip


def set_expiry(stack, user_id: str, method_id: str, month: int, year: int) -> None:
    """The card's stored expiry, as if that much time had passed since it was added."""
    stack.clients("dynamodb").update_item(
        TableName=stack.env["CASHEW_ACCOUNTS_TABLE"],
        Key={"pk": {"S": f"USER#{user_id}"}, "sk": {"S": f"PM#{method_id}"}},
        UpdateExpression="SET exp_month = :m, exp_year = :y",
        ExpressionAttributeValues={":m": {"N": str(month)}, ":y": {"N": str(year)}},
    )


def test_a_successful_charge_sets_last_used_at_and_a_replay_does_not(stack, new_user, gateway):
    # Given a user with a card never used
    user, payee = new_user(), new_user()
    card = add_card(stack, user)
    assert method_of(stack, user, card)["last_used_at"] is None
    # When they top up with it
    key = str(uuid.uuid4())
    first = top_up(stack, user, card, 1_000, key)
    # Then the charge succeeded and the method shows when
    assert (first.status, first.body["status"]) == (201, "succeeded")
    used = method_of(stack, user, card)["last_used_at"]
    assert used is not None and used >= first.body["created_at"]
    # When the same request is retried (a replay), it is not charged or used again
    assert top_up(stack, user, card, 1_000, key).headers.get("Idempotent-Replayed") == "true"
    assert method_of(stack, user, card)["last_used_at"] == used
    assert gateway.charges == 1
    # When a card payment authorises it (capture: false), it is used again, later
    source = {"type": "card", "payment_method_id": card}
    held = pay(stack, user, payee.id, 300, source=source, capture=False)
    assert held.body["status"] == "requires_capture", held.body
    assert method_of(stack, user, card)["last_used_at"] > used


@pytest.mark.parametrize("charge", ["top_up", "card_payment"])
def test_charging_an_expired_or_invalid_method_is_422_before_the_gateway(
    stack, new_user, gateway, charge
):
    # Given a user with a card marked expired, one marked invalid, and an active one
    user, payee = new_user(), new_user()
    active, expired, invalid = (add_card(stack, user) for _ in range(3))
    assert store.mark_expired(user.id, expired)
    stack.clients("dynamodb").update_item(
        TableName=stack.env["CASHEW_ACCOUNTS_TABLE"],
        Key={"pk": {"S": f"USER#{user.id}"}, "sk": {"S": f"PM#{invalid}"}},
        UpdateExpression="SET #s = :invalid",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":invalid": {"S": "invalid"}},
    )
    assert top_up(stack, user, active, 5_000).status == 201
    charges, before = gateway.charges, balance(stack, user)

    def attempt(method_id: str, key: str) -> Reply:
        if charge == "top_up":
            return top_up(stack, user, method_id, 500, key)
        source = {"type": "card", "payment_method_id": method_id}
        return pay(stack, user, payee.id, 500, key, source=source)

    for method_id, status in ((expired, "expired"), (invalid, "invalid")):
        # When they charge it
        key = str(uuid.uuid4())
        refused = attempt(method_id, key)
        # Then it is 422 payment_method_unusable, naming the field, and the gateway was never
        # asked, nothing was recorded or moved
        assert (refused.status, refused.code) == (422, "payment_method_unusable"), refused.body
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert status in refused.body["detail"]
        assert refused.body["errors"][0]["field"].endswith("payment_method_id")
        assert gateway.charges == charges
        assert balance(stack, user) == before
        used = {p["source"].get("payment_method_id") for p in payments_of(stack, user)}
        assert method_id not in used and active in used
        assert method_of(stack, user, method_id)["status"] == status
        # And the key is free again: the same key with an active card goes through
        assert attempt(active, key).status == 201
        charges, before = gateway.charges, balance(stack, user)


@pytest.mark.parametrize("charge", ["top_up", "card_payment"])
def test_a_refused_unusable_method_is_not_counted_in_the_payers_history(stack, new_user, charge):
    # Given a user whose only card is expired, and what their history counts now
    user, payee = new_user(), new_user()
    expired = add_card(stack, user)
    assert store.mark_expired(user.id, expired)
    window = velocity.COUNT_WINDOW_MINUTES
    counted = velocity.read(user.id).count_within(window)
    # When they try to charge it three times
    for _ in range(3):
        key = str(uuid.uuid4())
        if charge == "top_up":
            refused = top_up(stack, user, expired, 500, key)
        else:
            source = {"type": "card", "payment_method_id": expired}
            refused = pay(stack, user, payee.id, 500, key, source=source)
        assert refused.code == "payment_method_unusable"
    # Then none of the refusals counts toward the fraud screening's velocity rules
    assert velocity.read(user.id).count_within(window) == counted


def test_a_card_past_its_expiry_month_becomes_expired_and_is_refused(stack, new_user, gateway):
    # Given a card whose expiry month has passed since it was added
    user = new_user()
    card = add_card(stack, user)
    set_expiry(stack, user.id, card, 1, 2021)
    # Then it shows as expired before anyone charges it
    assert method_of(stack, user, card)["status"] == "expired"
    # When it is charged
    refused = top_up(stack, user, card, 500)
    # Then 422 payment_method_unusable without a gateway call, and it is stored expired
    assert (refused.status, refused.code) == (422, "payment_method_unusable")
    assert gateway.charges == 0
    assert store.get_payment_method(user.id, card).status == "expired"
    # And the card's expiry month itself still charges (the month has not passed)
    other = add_card(stack, user)
    from cashew import clock

    today = clock.now()
    set_expiry(stack, user.id, other, today.month, today.year)
    assert top_up(stack, user, other, 500).status == 201


def test_an_expired_card_decline_makes_the_method_expired(stack, new_user, gateway):
    # Given a card the issuer declines as expired
    user = new_user()
    card = add_card(stack, user, EXPIRED_CARD)
    assert method_of(stack, user, card)["status"] == "active"
    # When it is charged
    declined = top_up(stack, user, card, 500)
    # Then the payment failed with expired_card, and the method is now expired, never used
    assert declined.status == 201
    assert (declined.body["status"], declined.body["failure_code"]) == ("failed", "expired_card")
    shown = method_of(stack, user, card)
    assert (shown["status"], shown["last_used_at"]) == ("expired", None)
    # And the next charge is refused before the gateway
    charges = gateway.charges
    again = top_up(stack, user, card, 500)
    assert (again.status, again.code) == (422, "payment_method_unusable")
    assert gateway.charges == charges


def test_a_method_deleted_during_the_charge_does_not_fail_or_come_back(
    stack, new_user, monkeypatch
):
    # Given a card that is deleted while the gateway charges it (the update after loses)
    user = new_user()
    card = add_card(stack, user)
    counting = CountingGateway(
        create.get_gateway(), before=lambda: store.delete_payment_method(user.id, card, True, None)
    )
    monkeypatch.setattr(create, "get_gateway", lambda: counting)
    # When the charge completes
    charged = top_up(stack, user, card, 700)
    # Then the payment's answer is its success and the money moved; the method stays gone
    # (the update is conditional: it never writes a method back)
    assert (charged.status, charged.body["status"]) == (201, "succeeded")
    assert balance(stack, user) == 700
    assert store.get_payment_method(user.id, card) is None


def test_a_failing_method_update_never_fails_the_answer(stack, new_user, monkeypatch):
    # Given a method update that fails for a reason of AWS's own (throttled)
    user = new_user()
    card = add_card(stack, user)

    def throttled(*_: Any) -> bool:
        raise ClientError({"Error": {"Code": "ThrottlingException"}}, "UpdateItem")

    monkeypatch.setattr(face, "mark_method_used", throttled)
    # When the charge completes
    charged = top_up(stack, user, card, 900)
    # Then it is answered as it was recorded: succeeded, the money moved
    assert (charged.status, charged.body["status"]) == (201, "succeeded")
    assert balance(stack, user) == 900


def test_an_omitted_payment_method_is_the_default(stack, new_user, gateway):
    # Given a user with two cards, the second made the default
    user, payee = new_user(), new_user()
    first, second = add_card(stack, user), add_card(stack, user)
    assert store.set_default_method(user.id, second)
    # When they top up, and pay by card, naming no method
    topped = top_up_default(stack, user, 2_000)
    paid = pay(stack, user, payee.id, 400, source={"type": "card"})
    # Then the default was charged, and the payments say which it was
    assert (topped.status, topped.body["source"]) == (
        201, {"type": "card", "payment_method_id": second},
    )  # fmt: skip
    assert (paid.status, paid.body["source"]) == (
        201, {"type": "card", "payment_method_id": second},
    )  # fmt: skip
    assert method_of(stack, user, second)["last_used_at"] is not None
    assert method_of(stack, user, first)["last_used_at"] is None
    # And a retry of the same request replays it, even after the default changed
    key = str(uuid.uuid4())
    assert top_up_default(stack, user, 100, key).status == 201
    assert store.set_default_method(user.id, first)
    replay = top_up_default(stack, user, 100, key)
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.body["source"]["payment_method_id"] == second


def test_no_method_and_no_default_is_422(stack, new_user, gateway):
    # Given a user without any card
    user, payee = new_user(), new_user()
    # When they top up, or pay by card, naming no method
    topped = top_up_default(stack, user, 500)
    paid = pay(stack, user, payee.id, 500, source={"type": "card"})
    # Then both are 422 naming the field, nothing charged
    assert (topped.status, topped.code) == (422, "validation_error")
    assert topped.body["errors"][0]["field"] == "payment_method_id"
    assert (paid.status, paid.code) == (422, "validation_error")
    assert paid.body["errors"][0]["field"] == "source.payment_method_id"
    assert gateway.charges == 0
    # And a default that is expired is refused as unusable
    card = add_card(stack, user)
    assert store.mark_expired(user.id, card)
    assert top_up_default(stack, user, 500).code == "payment_method_unusable"
    assert gateway.charges == 0
