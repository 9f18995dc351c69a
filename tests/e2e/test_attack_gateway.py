"""Attacks on the gateway's configuration, over HTTP against the local stack (issue 10).

A production stage must not run the sandbox (it approves any card by its number) unless the
operator says so, and the sandbox's webhooks are signed with the stack's own generated
secret, not with the one the documentation publishes.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest

from local.cfn import load_template
from tests.e2e.conftest import (
    Stack,
    User,
    add_card,
    gateway_webhook_secret,
    launch,
)

DOCUMENTED_SECRET = "whsec_sandbox_local"  # API.md's and the code's old default
PROCESSING = "4000000000003220"


def _rule_description() -> str:
    (rule,) = load_template()["Rules"].values()
    return " ".join(str(rule["Assertions"][0]["AssertDescription"]).split())


def test_a_production_stage_with_the_sandbox_does_not_start(tmp_path: Path) -> None:
    # Given the local stack run as a production stage with the sandbox gateway
    log_path = tmp_path / "dev.log"
    with launch(log_path, CASHEW_LOCAL_PARAMETERS="Stage=prod Gateway=sandbox") as launched:
        # Then it exits instead of serving, with an error status
        assert launched.exit_code is not None, "a production stage started with the sandbox"
        assert launched.exit_code != 0
        # ... and says why: the template rule's own description
        output = " ".join(launched.stack.logs().split())
        assert "cannot start" in output
        assert _rule_description() in output


def test_a_production_stage_runs_the_sandbox_when_explicitly_allowed(tmp_path: Path) -> None:
    # Given the local stack run as a production stage, the sandbox explicitly allowed
    parameters = "Stage=prod Gateway=sandbox AllowSandbox=true"
    with launch(tmp_path / "dev.log", CASHEW_LOCAL_PARAMETERS=parameters) as launched:
        assert launched.exit_code is None, launched.stack.logs()[-4000:]
        stack = launched.stack
        # Then it serves, and its gateway (built with the generated secret, which passes the
        # production checks) tokenises a card
        assert stack.request("GET", "/v1/health").status_code == 200
        email = f"{uuid.uuid4().hex[:12]}@example.com"
        password = "correct horse battery staple"
        created = stack.request(
            "POST", "/v1/users", json={"email": email, "password": password, "name": "Prod"}
        )
        assert created.status_code == 201, created.text
        login = stack.request("POST", "/v1/auth/login", json={"email": email, "password": password})
        assert login.status_code == 200, login.text
        user = User(created.json()["id"], email, password, login.json()["access_token"], "")
        assert add_card(stack, user).startswith("pm_")
        launched.stop()


def _webhook(payment_id: str) -> bytes:
    event = {
        "id": f"evt_sbx_{uuid.uuid4().hex[:24]}",
        "type": "charge.succeeded",
        "data": {
            "charge_id": f"ch_sbx_{uuid.uuid4().hex[:24]}",
            "payment_id": payment_id,
            "status": "succeeded",
            "failure_code": None,
            "amount_captured": 100_000_000,
        },
    }
    return json.dumps(event, separators=(",", ":")).encode()


def _signed(body: bytes, secret: str) -> dict[str, str]:
    from cashew.gateways.base import sign_webhook

    return {
        "Content-Type": "application/json",
        "Gateway-Signature": sign_webhook(body, secret, int(time.time())),
    }


@pytest.fixture
def processing_payment(stack: Stack, new_user) -> str:
    payer, payee = new_user(), new_user()
    card = add_card(stack, payer, PROCESSING)
    paid = stack.request(
        "POST",
        "/v1/payments",
        payer.token,
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={
            "amount": 1000,
            "currency": "USD",
            "payee_id": payee.id,
            "source": {"type": "card", "payment_method_id": card},
        },
    )
    assert paid.status_code == 201, paid.text
    assert paid.json()["status"] == "processing"
    return str(paid.json()["id"])


def test_a_webhook_signed_with_the_documented_secret_is_refused(
    stack: Stack, processing_payment: str
) -> None:
    # Given a webhook for a payment, signed with the secret the documentation published
    body = _webhook(processing_payment)
    # When it is posted
    forged = stack.request(
        "POST", "/v1/webhooks/gateway", data=body, headers=_signed(body, DOCUMENTED_SECRET)
    )
    # Then it is refused: that is not the stack's secret
    assert forged.status_code == 400, forged.text
    assert forged.headers["Content-Type"] == "application/problem+json"
    assert forged.json()["code"] == "invalid_signature"
    # ... while the same body signed with the stack's own generated secret is accepted
    # (the charge id is not the payment's, so it changes nothing)
    secret = gateway_webhook_secret(stack)
    assert secret != DOCUMENTED_SECRET and len(secret) >= 32
    genuine = stack.request(
        "POST", "/v1/webhooks/gateway", data=body, headers=_signed(body, secret)
    )
    assert genuine.status_code == 200, genuine.text
