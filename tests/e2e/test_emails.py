"""Emails over HTTP against the local stack (API.md "Notifications", "The local stack",
properties 38 and 39): a payment emails payer and payee, read from /_local/mail.json; the
receipt an email carries verifies with nothing but /.well-known/jwks.json; notify_email false
gets none."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import jwt

from cashew.ledger import chain
from tests.e2e.conftest import add_card, top_up

_JWS = re.compile(r"ey[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


# Every registration emails its verification link (tests/e2e/test_attack_verification.py),
# every login a new-sign-in email: the outcomes' emails are counted here without them.
_WELCOME = "Confirm your Cashew email address"
_SIGN_IN = "New sign-in to your Cashew account"


def _inbox(stack, address: str, count: int, timeout: float = 30) -> list[dict[str, Any]]:
    """The address's emails but its verification email and the new-sign-in emails (each login
    of the fixtures sends one: tests/e2e/test_sign_in.py), once there are `count` of them
    (polled until the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = stack.http.get(f"{stack.url}/_local/mail.json", params={"to": address}, timeout=10)
        assert reply.status_code == 200, reply.text
        mails: list[dict[str, Any]] = [
            m for m in reply.json()["data"] if m["subject"] not in (_WELCOME, _SIGN_IN)
        ]
        if len(mails) >= count or time.monotonic() > deadline:
            return mails
        time.sleep(0.3)


def _pay(stack, payer, payee_id: str, amount: int) -> dict[str, Any]:
    reply = stack.request("POST", "/v1/payments", payer.token,
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={"amount": amount, "currency": "USD", "payee_id": payee_id,
              "source": {"type": "balance"}})  # fmt: skip
    assert reply.status_code == 201, reply.text
    return dict(reply.json())


def test_a_payment_emails_payer_and_payee_with_a_receipt_the_jwks_verifies(stack, new_user):
    # Given Alice topped up and paid Bob 12.50
    alice, bob = new_user("Alice"), new_user("Bob")
    card = add_card(stack, alice)
    top_up(stack, alice, card, 5_000)
    payment = _pay(stack, alice, bob.id, 1_250)
    # When their inboxes are read
    to_alice, to_bob = _inbox(stack, alice.email, 2), _inbox(stack, bob.email, 1)
    # Then Alice has her top-up's email and her payment's, Bob his (the consumer sends each
    # outcome's email as it takes it from the queue: two outcomes may go out in either order)
    expected = ["You paid $12.50 to Bob", "You added $50.00 to your Cashew balance"]
    assert sorted(m["subject"] for m in to_alice) == sorted(expected)
    assert [m["subject"] for m in to_bob] == ["You were paid $12.50 by Alice"]
    to_alice.sort(key=lambda mail: expected.index(mail["subject"]))
    for mail in (to_alice[0], to_bob[0]):
        assert payment["id"] in mail["text"] and payment["id"] in mail["html"]
        assert mail["from"] == "Cashew <no-reply@cashew.local>"
    assert "Visa •••• 4242" in to_alice[1]["text"]  # the top-up's card: brand and last4 only
    # ... and each carries a receipt that the JWKS alone verifies, of the entry the log holds
    jwks = stack.request("GET", "/.well-known/jwks.json").json()
    for user, mail in ((alice, to_alice[0]), (bob, to_bob[0])):
        (receipt,) = set(_JWS.findall(mail["text"]))
        header = jwt.get_unverified_header(receipt)
        assert header["typ"] == "cashew-receipt+jwt"
        claims = jwt.decode(receipt, jwt.PyJWKSet.from_dict(jwks)[header["kid"]],
                            algorithms=["EdDSA"])  # fmt: skip
        assert (claims["user_id"], claims["payment_id"], claims["amount"]) == (
            user.id, payment["id"], 1_250,
        )  # fmt: skip
        entry = stack.request("GET", f"/v1/transactions/{claims['entry_id']}", user.token).json()
        assert chain.entry_hash(entry) == claims["hash"]
    # ... and nothing of the card beyond brand and last4 is in any of them
    for mail in to_alice + to_bob:
        assert "4242424242424242" not in f"{mail['text']}{mail['html']}"


def test_notify_email_false_gets_no_email(stack, new_user):
    # Given Bob turned email notifications off
    alice, bob = new_user("Alice"), new_user("Bob")
    muted = stack.request("PATCH", "/v1/users/me", bob.token,
                          json={"settings": {"notify_email": False}})  # fmt: skip
    assert muted.status_code == 200, muted.text
    top_up(stack, alice, add_card(stack, alice), 5_000)
    # When Alice pays him
    _pay(stack, alice, bob.id, 300)
    # Then Alice is emailed (after her payment's email has come, Bob's would have too)
    assert len(_inbox(stack, alice.email, 2)) == 2
    assert _inbox(stack, bob.email, 1, timeout=3) == []


def test_the_inbox_page_is_readable_html(stack, new_user):
    alice = new_user("Alice")
    top_up(stack, alice, add_card(stack, alice), 1_000)
    _inbox(stack, alice.email, 1)
    page = stack.http.get(f"{stack.url}/_local/mail", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "You added $10.00" in page.text and '<iframe sandbox=""' in page.text
