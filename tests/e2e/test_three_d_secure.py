"""3-D Secure over HTTP against the local stack (issue 14): the sandbox's 3063 card answers
`requires_action` with the challenge page at `next_action.url`; passing it there settles the
payment (balance credited once), failing it fails the payment (`authentication_failed`);
only the end is an outcome (logged, emailed)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from tests.e2e.conftest import add_card, balance

THREE_DS = "4000000000003063"
_WELCOME = "Confirm your Cashew email address"
_SIGN_IN = "New sign-in to your Cashew account"


def _top_up(stack, user, method: str, amount: int, key: str | None = None) -> Any:
    reply = stack.request(
        "POST", "/v1/top-ups", user.token, headers={"Idempotency-Key": key or str(uuid.uuid4())},
        json={"amount": amount, "currency": "USD", "payment_method_id": method},
    )  # fmt: skip
    assert reply.status_code == 201, reply.text
    return reply.json()


def _settled(stack, user, payment_id: str, timeout: float = 20) -> dict[str, Any]:
    """The payment once it has left requires_action (the webhook comes a moment later)."""
    deadline = time.monotonic() + timeout
    while True:
        payment = stack.request("GET", f"/v1/payments/{payment_id}", user.token).json()
        if payment["status"] != "requires_action" or time.monotonic() > deadline:
            return dict(payment)
        time.sleep(0.3)


def _mails(stack, address: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        reply = stack.http.get(f"{stack.url}/_local/mail.json", params={"to": address}, timeout=10)
        assert reply.status_code == 200, reply.text
        mails = [m for m in reply.json()["data"] if m["subject"] not in (_WELCOME, _SIGN_IN)]
        if len(mails) >= count or time.monotonic() > deadline:
            return mails
        time.sleep(0.3)


def _history(stack, user, payment_id: str, count: int, timeout: float = 20) -> list[Any]:
    deadline = time.monotonic() + timeout
    while True:
        data = stack.request("GET", "/v1/transactions", user.token).json()["data"]
        found = [(e["type"], e["status"]) for e in data if e["payment_id"] == payment_id]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(0.3)


def test_a_3ds_top_up_passes_at_the_challenge_page_and_is_credited_once(stack, new_user):
    # Given a user with the 3-D Secure card, who tops up 30.00
    user = new_user()
    method = add_card(stack, user, THREE_DS)
    key = str(uuid.uuid4())
    created = _top_up(stack, user, method, 3_000, key)
    # Then it requires action: the challenge page's URL, nothing credited
    assert (created["status"], created["amount_captured"]) == ("requires_action", 0)
    action = created["next_action"]
    assert action["type"] == "redirect_to_url"
    assert action["url"].startswith(f"{stack.url}/_sandbox/v1/challenges/")
    assert created["id"] not in action["url"]
    assert balance(stack, user) == 0
    # ... the same request again answers the same payment and next_action
    assert _top_up(stack, user, method, 3_000, key) == created
    # When the card holder opens the page
    page = stack.http.get(action["url"], timeout=10)
    # Then it shows the amount and the two buttons, with no script allowed
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert 'value="pass">Pass</button>' in page.text
    assert 'value="fail">Fail</button>' in page.text
    assert "3000 USD" in page.text
    # When they pass it
    passed = stack.http.post(action["url"], data={"result": "pass"}, timeout=10)
    assert passed.status_code == 200, passed.text
    # Then the top-up succeeds and the balance is credited, once
    settled = _settled(stack, user, created["id"])
    assert (settled["status"], settled["amount_captured"], settled["next_action"]) == (
        "succeeded", 3_000, None,
    )  # fmt: skip
    assert balance(stack, user) == 3_000
    # ... a second POST is refused and changes nothing
    again = stack.http.post(action["url"], data={"result": "pass"}, timeout=10)
    assert again.status_code == 409
    assert stack.http.get(action["url"], timeout=10).status_code == 409
    # ... one log entry (no requires_action one) and one email
    assert _history(stack, user, created["id"], 1) == [("top_up", "succeeded")]
    assert len(_mails(stack, user.email, 1)) == 1
    time.sleep(1)
    assert balance(stack, user) == 3_000
    assert len(_history(stack, user, created["id"], 2, timeout=0)) == 1


def test_a_failed_challenge_fails_the_card_payment_and_pays_no_one(stack, new_user):
    # Given a payer with the 3-D Secure card and a payee
    payer, payee = new_user(), new_user()
    method = add_card(stack, payer, THREE_DS)
    reply = stack.request(
        "POST", "/v1/payments", payer.token, headers={"Idempotency-Key": str(uuid.uuid4())},
        json={"amount": 1_500, "currency": "USD", "payee_id": payee.id,
              "source": {"type": "card", "payment_method_id": method}},
    )  # fmt: skip
    assert reply.status_code == 201, reply.text
    created = reply.json()
    assert created["status"] == "requires_action"
    # When the card holder fails the challenge
    failed = stack.http.post(created["next_action"]["url"], data={"result": "fail"}, timeout=10)
    assert failed.status_code == 200
    # Then the payment failed with authentication_failed, and the payee got nothing
    settled = _settled(stack, payer, created["id"])
    assert (settled["status"], settled["failure_code"], settled["next_action"]) == (
        "failed", "authentication_failed", None,
    )  # fmt: skip
    assert balance(stack, payee) == 0
    # ... and a pass afterwards is refused
    late = stack.http.post(created["next_action"]["url"], data={"result": "pass"}, timeout=10)
    assert late.status_code == 409
    assert _history(stack, payer, created["id"], 1) == [("payment", "failed")]
    assert balance(stack, payee) == 0
