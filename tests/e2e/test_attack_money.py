"""Attack tests over HTTP against the local stack (issue 10, points 1 and 15): money that a
signed gateway event forges.

A sandbox charge id is computable from the caller's own id and Idempotency-Key, so anyone
who knows the webhook secret can sign a `charge.succeeded` for their own processing payment.
It must credit at most what the payment authorised: the forged event moves nothing, the
gateway's own event settles the payment at its authorised amount, and the audit afterwards
finds nothing wrong with either user, the payment, or card money.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

import pytest

from cashew.gateways.base import sign_webhook
from tests.e2e.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    Stack,
    add_card,
    balance,
    gateway_webhook_secret,
    wait_for_entries,
)

PROCESSING_CARD = "4000000000003220"  # API.md: `processing`, the result comes by webhook
AUTHORISED = 1_000
FORGED = 100_000_000


@pytest.fixture(scope="session")
def webhook_secret(stack: Stack) -> str:
    """The secret the local stack's sandbox gateway signs its webhooks with: the
    `webhook_secret` of the GatewaySecret it provisioned (the attacker is assumed to know it)."""
    return gateway_webhook_secret(stack)


def sandbox_charge_id(user_id: str, idempotency_key: str) -> str:
    """What the attacker computes: the sandbox's charge id for their own request."""
    gateway_key = hashlib.sha256(f"{user_id}#{idempotency_key}".encode()).hexdigest()
    return "ch_sbx_" + hashlib.sha256(gateway_key.encode()).hexdigest()[:24]


def admin_token(stack: Stack) -> str:
    login = stack.request(
        "POST", "/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert login.status_code == 200, login.text
    return str(login.json()["access_token"])


def payment(stack: Stack, token: str, payment_id: str) -> dict[str, Any]:
    reply = stack.request("GET", f"/v1/payments/{payment_id}", token)
    assert reply.status_code == 200, reply.text
    return dict(reply.json())


def test_a_forged_over_amount_webhook_credits_nothing(stack, new_user, webhook_secret):
    # Given a card payment of 1,000 from a processing card: the gateway answers by webhook
    payer, payee = new_user(), new_user()
    card = add_card(stack, payer, PROCESSING_CARD)
    key = str(uuid.uuid4())
    created = stack.request(
        "POST", "/v1/payments", payer.token, headers={"Idempotency-Key": key},
        json={"amount": AUTHORISED, "currency": "USD", "payee_id": payee.id,
              "source": {"type": "card", "payment_method_id": card}},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    paid = created.json()
    assert paid["status"] == "processing"
    # When the payer signs a charge.succeeded capturing 100,000,000 for it
    forged = {
        "id": f"evt_sbx_{uuid.uuid4().hex[:24]}",
        "type": "charge.succeeded",
        "data": {
            "charge_id": sandbox_charge_id(payer.id, key), "payment_id": paid["id"],
            "status": "succeeded", "failure_code": None, "amount_captured": FORGED,
        },
    }  # fmt: skip
    body = json.dumps(forged, separators=(",", ":")).encode()
    answer = stack.request(
        "POST", "/v1/webhooks/gateway", data=body,
        headers={"Content-Type": "application/json",
                 "Gateway-Signature": sign_webhook(body, webhook_secret, int(time.time()))},
    )  # fmt: skip
    # Then it is accepted (a valid signature) and credits nothing: the payee has nothing, or
    # (on a slow machine the sandbox's own webhook, a few seconds after the charge, may have
    # come first) exactly what was authorised
    assert answer.status_code == 200, answer.text
    assert balance(stack, payee) in (0, AUTHORISED)
    assert payment(stack, payer.token, paid["id"])["amount_captured"] in (0, AUTHORISED)
    # ... and the gateway's own event settles it at the authorised amount, no more
    deadline = time.monotonic() + 30
    while (settled := payment(stack, payer.token, paid["id"]))["status"] == "processing":
        assert time.monotonic() < deadline, "the sandbox's webhook never came"
        time.sleep(0.5)
    assert (settled["status"], settled["amount_captured"]) == ("succeeded", AUTHORISED)
    assert balance(stack, payee) == AUTHORISED
    [credit] = wait_for_entries(stack, payee.token, payment_id=paid["id"], status="succeeded")
    assert credit["amount"] == AUTHORISED
    # And the audit finds nothing wrong with either user or the payment
    deadline = time.monotonic() + 30
    while True:
        reply = stack.request("GET", "/v1/admin/audit/verify", admin_token(stack))
        assert reply.status_code == 200, reply.text
        audit = reply.json()
        ours = [p for p in audit["pending"] if p["user_id"] in (payer.id, payee.id)]
        if not ours or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert ours == []
    mine = [
        d for d in audit["discrepancies"]
        if d.get("user_id") in (payer.id, payee.id) or d.get("payment_id") == paid["id"]
    ]  # fmt: skip
    assert mine == []
    assert audit["card_money_explained"], audit["discrepancies"]
