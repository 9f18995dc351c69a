"""Cards by gateway token (POST /v1/users/me/payment-methods `{gateway_token}`), the gateway's
card updates (`payment_method.automatically_updated`), and payment methods kept current by a
charge the gateway settles later by webhook. Against the sandbox gateway on moto."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from cashew import dynamo
from cashew.accounts import cards
from cashew.accounts import face as accounts
from cashew.accounts.cards import token_digest
from cashew.config import get_settings
from cashew.gateways.base import sign_webhook
from cashew.gateways.sandbox import SandboxGateway
from cashew.payments import store as payments_store
from local.events import api_event
from tests.integration.conftest import (
    add_card,
    add_card_by_token,
    card_update_webhook,
    pay,
    sandbox_token,
    top_up,
)
from tests.support.lambda_runtime import reply

PROCESSING = "4000000000003220"
EXPIRED = "4000000000000069"


def _method(stack, user, method_id):
    return stack.call(
        "GetPaymentMethodFunction", "accounts/get_payment_method.json",
        authorizer=user.authorizer, path={"id": method_id},
    ).body  # fmt: skip


def _methods(stack, user):
    return stack.call(
        "ListPaymentMethodsFunction", "accounts/list_payment_methods.json",
        authorizer=user.authorizer,
    ).body["data"]  # fmt: skip


def _charging_token(stack, token: str) -> str:
    return SandboxGateway(secret=stack.gateway_webhook_secret()).attach_token(token).token


def _refused(reply_, message_part: str) -> None:
    assert reply_.status == 422, reply_.body
    assert reply_.body["code"] == "validation_error"
    [error] = reply_.body["errors"]
    assert error["field"] == "gateway_token", reply_.body
    assert message_part in error["message"], reply_.body


# ------------------------------------------------------------------ adding by token


def test_a_card_added_by_token_shows_what_the_gateway_says_and_is_the_first_default(
    stack, new_user
):
    # Given a user and a sandbox token of a Mastercard expiring 12/2031
    user = new_user()
    token = sandbox_token(stack, "5555555555554444", year=2031)
    # When the user adds it by gateway_token
    added = add_card_by_token(stack, user, token)
    # Then it is a card like one added by number: brand, last4, expiry from the gateway, a
    # fingerprint, active, the user's default (their first card)
    assert added.status == 201, added.body
    body = added.body
    assert body["card"] | {"fingerprint": None} == {
        "brand": "mastercard", "last4": "4444", "exp_month": 12, "exp_year": 2031,
        "fingerprint": None,
    }  # fmt: skip
    assert len(body["card"]["fingerprint"]) == 32
    assert (body["status"], body["default"], body["last_used_at"]) == ("active", True, None)
    # ... and a second token of the same card has the same fingerprint, and is not the default
    again = add_card_by_token(stack, user, sandbox_token(stack, "5555555555554444", year=2031))
    assert again.status == 201, again.body
    assert again.body["card"]["fingerprint"] == body["card"]["fingerprint"]
    assert again.body["default"] is False


def test_a_token_attaches_once_for_anyone(stack, new_user):
    # Given a token one user attached
    first, other = new_user(), new_user()
    token = sandbox_token(stack)
    assert add_card_by_token(stack, first, token).status == 201
    # When the same user, or another one, adds it again
    for user in (first, other):
        again = add_card_by_token(stack, user, token)
        # Then it is 422 on gateway_token, and nothing was added
        _refused(again, "attached")
    assert len(_methods(stack, first)) == 1
    assert _methods(stack, other) == []


def test_a_forged_edited_or_foreign_token_is_422_and_writes_nothing(stack, new_user):
    user = new_user()
    genuine = sandbox_token(stack)
    assert genuine.startswith("tok_approved.visa.4242.122030.")
    edited_last4 = genuine.replace(".4242.", ".1111.")
    edited_scenario = genuine.replace("tok_approved.", "tok_risky.")
    forged = SandboxGateway(secret="another secret of at least 32 chars!").issue_token(
        "4242424242424242", 12, 2030
    )
    truncated = genuine[:-1]
    for token in (edited_last4, edited_scenario, forged, truncated, "tok_nothing"):
        _refused(add_card_by_token(stack, user, token), "not a token of this gateway")
    # a Stripe payment method on the sandbox: unknown too; not a token at all: refused by schema
    _refused(add_card_by_token(stack, user, "pm_1NotSandbox"), "not a token of this gateway")
    _refused(add_card_by_token(stack, user, "4242424242424242"), "not a card token")
    assert _methods(stack, user) == []
    # ... and the genuine one still attaches
    assert add_card_by_token(stack, user, genuine).status == 201


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"billing_name": "A. Holder"},
        {
            "gateway_token": "TOKEN",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"},
        },
        {"gateway_token": "TOKEN", "cvc": "123"},
        {"gateway_token": None},
        {"gateway_token": 42},
    ],
    ids=["empty", "neither", "both", "unknown-field", "null", "not-a-string"],
)
def test_exactly_one_of_card_and_gateway_token_and_nothing_else(stack, new_user, body):
    user = new_user()
    if body.get("gateway_token") == "TOKEN":
        body = body | {"gateway_token": sandbox_token(stack)}
    added = stack.call(
        "AddPaymentMethodFunction", "accounts/add_payment_method.json", body=body,
        authorizer=user.authorizer,
    )  # fmt: skip
    assert added.status == 422, added.body
    assert added.body["code"] == "validation_error"
    assert _methods(stack, user) == []


def test_an_expired_card_by_token_is_422(stack, new_user):
    user = new_user()
    token = sandbox_token(stack, year=2021)
    expired = add_card_by_token(stack, user, token)
    _refused(expired, "expired")


def test_only_the_sealed_charging_token_and_a_digest_are_stored(stack, new_user):
    # Given a card added by token
    user = new_user()
    token = sandbox_token(stack)
    method_id = add_card_by_token(stack, user, token).body["id"]
    charging = _charging_token(stack, token)
    # Then no stored item of the accounts table holds the client token or the charging token
    # in clear (the method holds the charging token sealed), and the marker holds its digest
    table = get_settings().accounts_table
    items, _ = dynamo.query(table, "pk = :pk", {":pk": f"USER#{user.id}"}, consistent=True)
    marker = dynamo.get_item(
        table, {"pk": f"GATEWAY_TOKEN#{token_digest(charging)}", "sk": "GATEWAY_TOKEN"}
    )
    assert marker == {
        "pk": f"GATEWAY_TOKEN#{token_digest(charging)}", "sk": "GATEWAY_TOKEN",
        "owner": user.id, "method_id": method_id, "created_at": marker["created_at"],
    }  # fmt: skip
    stored = repr([*items, marker])
    nonce = token.split(".")[-2]
    assert token not in stored and charging not in stored and nonce not in stored


# ------------------------------------------------------------------ the sandbox's scenarios

SCENARIOS = [
    ("4242424242424242", "succeeded", None, "normal"),
    ("4000000000000002", "failed", "card_declined", "normal"),
    (PROCESSING, "processing", None, "normal"),
    # the high-risk flag is blocked by default (CASHEW_FRAUD_BLOCK_RISKY_CARDS): by token too
    ("4100000000000019", "failed", "fraud_suspected", "blocked"),
]


@pytest.mark.parametrize(
    ("number", "status", "failure_code", "risk"),
    SCENARIOS,
    ids=["approved", "declined", "processing", "risky"],
)
def test_a_card_by_token_behaves_as_its_number_does(
    stack, new_user, number, status, failure_code, risk
):
    # Given a card of each scenario family added by token
    user = new_user()
    added = add_card_by_token(stack, user, sandbox_token(stack, number))
    assert added.status == 201, added.body
    # When it is charged
    charged = top_up(stack, user, added.body["id"], 1_000)
    # Then the outcome is that of its number in the sandbox table
    assert charged.status == 201, charged.body
    assert (charged.body["status"], charged.body["failure_code"]) == (status, failure_code)
    assert charged.body["risk"]["level"] == risk


# ------------------------------------------------------------------ card updates


def test_a_card_update_renews_an_expired_card_once(stack, new_user):
    # Given a card the issuer declined as expired (so it is `expired`)
    user = new_user()
    token = sandbox_token(stack, EXPIRED)
    method_id = add_card_by_token(stack, user, token).body["id"]
    assert top_up(stack, user, method_id, 100).body["failure_code"] == "expired_card"
    assert _method(stack, user, method_id)["status"] == "expired"
    charging = _charging_token(stack, token)
    # When the gateway's card update for it arrives
    _, renewed = card_update_webhook(stack, charging, "0069", 3, 2034)
    assert renewed().status == 200
    # Then it has the new expiry and last4 and is active again
    shown = _method(stack, user, method_id)
    assert (shown["status"], shown["card"]["last4"]) == ("active", "0069")
    assert (shown["card"]["exp_month"], shown["card"]["exp_year"]) == (3, 2034)
    # ... and an event seen before changes nothing (a later update stands)
    _, later = card_update_webhook(stack, charging, "1234", 4, 2035)
    assert later().status == 200
    assert renewed().status == 200
    shown = _method(stack, user, method_id)
    assert (shown["card"]["last4"], shown["card"]["exp_year"]) == ("1234", 2035)


def test_a_card_update_for_a_card_added_by_number_reaches_it(stack, new_user):
    # Given a card added by number: its marker is that of the token the gateway gave Cashew
    user = new_user()
    method_id = add_card(stack, user)
    stored = accounts.get_payment_method(user.id, method_id)
    assert stored is not None
    sealed = cards.SealedToken(stored.token_ciphertext, stored.token_nonce, stored.token_data_key)
    charging = cards.unseal(sealed, user.id, method_id)
    # When the gateway updates that card
    _, update = card_update_webhook(stack, charging, "4242", 1, 2033)
    assert update().status == 200
    # Then the method has the new expiry
    assert _method(stack, user, method_id)["card"]["exp_year"] == 2033


def test_a_card_update_for_no_method_of_ours_is_accepted_and_changes_nothing(stack, new_user):
    user = new_user()
    method_id = add_card_by_token(stack, user, sandbox_token(stack)).body["id"]
    before = _method(stack, user, method_id)
    _, update = card_update_webhook(
        stack, f"tok_sbx_approved_{uuid.uuid4().hex[:24]}", "9999", 1, 2040
    )
    assert update().status == 200
    assert _method(stack, user, method_id) == before


def test_a_card_update_whose_method_was_deleted_is_accepted(stack, new_user):
    user = new_user()
    token = sandbox_token(stack)
    method_id = add_card_by_token(stack, user, token).body["id"]
    deleted = stack.call(
        "DeletePaymentMethodFunction", "accounts/delete_payment_method.json",
        authorizer=user.authorizer, path={"id": method_id},
    )  # fmt: skip
    assert deleted.status == 204
    _, update = card_update_webhook(stack, _charging_token(stack, token), "9999", 1, 2040)
    assert update().status == 200
    assert _methods(stack, user) == []


# ------------------------------------------------------------------ settled by webhook


def _charge_webhook(stack, payment_id, status, failure_code=None, amount=700):
    charge_id = payments_store.get(payment_id).charge_id
    event = json.dumps({
        "id": f"evt_sbx_{uuid.uuid4().hex[:24]}",
        "type": "charge.failed" if status == "failed" else "charge.succeeded",
        "data": {"charge_id": charge_id, "payment_id": payment_id, "status": status,
                 "failure_code": failure_code,
                 "amount_captured": amount if status == "succeeded" else 0},
    })  # fmt: skip
    signature = sign_webhook(event.encode(), stack.gateway_webhook_secret(), int(time.time()))
    sent = api_event(
        "payments/gateway_webhook.json", raw_body=event, headers={"Gateway-Signature": signature}
    )
    return reply(stack.invoke("GatewayWebhookFunction", sent))


def test_a_charge_settled_by_webhook_sets_last_used_at(stack, new_user):
    # Given a processing card payment: the method is not used yet
    payer, payee = new_user(), new_user()
    method_id = add_card(stack, payer, PROCESSING)
    paid = pay(stack, payer, payee.id, 700, source={"type": "card", "payment_method_id": method_id})
    assert paid.body["status"] == "processing"
    assert _method(stack, payer, method_id)["last_used_at"] is None
    # When the gateway's webhook says it succeeded
    assert _charge_webhook(stack, paid.body["id"], "succeeded").status == 200
    # Then the method's last_used_at is set, as a synchronous success sets it
    assert _method(stack, payer, method_id)["last_used_at"] is not None


def test_a_charge_declined_as_expired_by_webhook_makes_the_method_expired(stack, new_user):
    payer, payee = new_user(), new_user()
    method_id = add_card(stack, payer, PROCESSING)
    paid = pay(stack, payer, payee.id, 700, source={"type": "card", "payment_method_id": method_id})
    assert _charge_webhook(stack, paid.body["id"], "failed", "expired_card").status == 200
    shown = _method(stack, payer, method_id)
    assert (shown["status"], shown["last_used_at"]) == ("expired", None)
