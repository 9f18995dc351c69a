"""Attacks on payouts over HTTP: another user's card or payout, a payout without a key,
over-drawing, a forged or replayed payout webhook, and a race to overdraw one balance."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from cashew.gateways.base import sign_webhook
from tests.e2e.conftest import add_card, balance, gateway_webhook_secret, top_up
from tests.e2e.test_payouts import payout


def test_another_users_card_and_payout_are_not_found(stack, new_user):
    mallory, victim = new_user("Mallory"), new_user("Victim")
    victims_card = add_card(stack, victim)
    top_up(stack, victim, victims_card, 5_000)
    top_up(stack, mallory, add_card(stack, mallory), 5_000)
    assert payout(stack, mallory, 100, victims_card).status_code == 404
    theirs = payout(stack, victim, 100, victims_card).json()
    assert stack.request("GET", f"/v1/payouts/{theirs['id']}", mallory.token).status_code == 404
    listed = stack.request("GET", "/v1/payouts", mallory.token).json()["data"]
    assert theirs["id"] not in [p["id"] for p in listed]
    assert balance(stack, victim) == 4_900 and balance(stack, mallory) == 5_000


def test_a_payout_needs_a_key_and_a_well_formed_body(stack, new_user):
    user = new_user()
    card = add_card(stack, user)
    top_up(stack, user, card, 1_000)
    no_key = stack.request("POST", "/v1/payouts", user.token,
                           json={"amount": 100, "currency": "USD"})  # fmt: skip
    assert no_key.status_code == 400 and no_key.json()["code"] == "idempotency_key_missing"
    for body in ({"amount": 10.5, "currency": "USD"}, {"amount": -1, "currency": "USD"},
                 {"amount": 100, "currency": "USD", "payee_id": "x"}):  # fmt: skip
        bad = stack.request("POST", "/v1/payouts", user.token,
                            headers={"Idempotency-Key": str(uuid.uuid4())}, json=body)  # fmt: skip
        assert bad.status_code == 422, bad.text
    assert balance(stack, user) == 1_000


def test_over_drawing_fails_and_moves_nothing(stack, new_user):
    user = new_user()
    card = add_card(stack, user)
    top_up(stack, user, card, 1_000)
    reply = payout(stack, user, 1_001, card)
    assert (reply.json()["status"], reply.json()["failure_code"]) == (
        "failed",
        "insufficient_funds",
    )
    assert balance(stack, user) == 1_000


def test_a_forged_or_replayed_payout_webhook_moves_nothing(stack, new_user):
    # Given a pending payout (the processing card)
    user = new_user()
    top_up(stack, user, add_card(stack, user), 5_000)
    pending = payout(stack, user, 2_000, add_card(stack, user, "4000000000003220")).json()
    data = {"gateway_payout_id": "po_sbx_forged", "payout_id": pending["id"],
            "failure_code": "card_declined", "amount": 2_000, "currency": "USD"}  # fmt: skip
    event = {"id": f"evt_sbx_{uuid.uuid4().hex[:24]}", "type": "payout.failed", "data": data}
    body = json.dumps(event).encode()
    # When an attacker posts a failure (to get the money back while it is paid) unsigned,
    # signed with a wrong secret, or with the right secret but a foreign gateway payout id
    for signature in (None, sign_webhook(body, "whsec_guess" * 4, int(time.time()))):
        headers = {"Content-Type": "application/json"}
        if signature:
            headers["Gateway-Signature"] = signature
        refused = stack.request("POST", "/v1/webhooks/gateway", data=body, headers=headers)
        assert refused.status_code == 400
    signed = sign_webhook(body, gateway_webhook_secret(stack), int(time.time()))
    headers = {"Gateway-Signature": signed, "Content-Type": "application/json"}
    for _ in range(2):
        assert stack.request("POST", "/v1/webhooks/gateway", data=body, headers=headers).ok
    # Then the payout is not failed by it and no money came back; the genuine webhook pays it
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = stack.request("GET", f"/v1/payouts/{pending['id']}", user.token).json()["status"]
        if status != "pending":
            break
        time.sleep(0.3)
    assert status == "paid"
    assert balance(stack, user) == 3_000


def test_eight_concurrent_payouts_never_overdraw_one_balance(stack, new_user):
    user = new_user()
    card = add_card(stack, user)
    top_up(stack, user, card, 10_000)
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: payout(stack, user, 3_000, card), range(8)))
    assert all(r.status_code in (201, 409, 429) for r in replies), [r.text for r in replies]
    made = stack.request("GET", "/v1/payouts?limit=100", user.token).json()["data"]
    out = sum(p["amount"] for p in made if p["status"] in ("paid", "pending"))
    assert 0 < out <= 9_000
    assert balance(stack, user) == 10_000 - out >= 0
