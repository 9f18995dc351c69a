"""Attacks on CASHEW_REQUIRE_VERIFIED_EMAIL's gate over HTTP (review of issue 13): every POST
that moves money waits for a verified email, the admin's included. A dispute resolved as
`won` refunds the payer from the payee's balance, as an admin's POST .../refunds does, so
an unverified admin may no more move money that way than by a refund. On a stack of its own
with the template's RequireVerifiedEmail=true (the `gated` fixture)."""

from __future__ import annotations

import uuid

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, User, balance, wait_for_entries
from tests.e2e.test_attack_verification import (  # noqa: F401 - the fixture
    _card,
    _register,
    _tokens,
    _top_up,
    _unverified,
    _verify,
    gated,
)


def _admin(stack) -> User:
    login = stack.request(
        "POST", "/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert login.status_code == 200, login.text
    body = login.json()
    me = stack.request("GET", "/v1/users/me", body["access_token"]).json()
    assert me["role"] == "admin"
    return User(me["id"], ADMIN_EMAIL, ADMIN_PASSWORD, body["access_token"], body["refresh_token"])


def test_an_unverified_admin_cannot_move_money_by_resolving_a_dispute(gated):  # noqa: F811
    # Given a verified payer who paid a payee 400 of a 1000 top-up, and disputes it
    payer, payee, admin = _register(gated), _register(gated), _admin(gated)
    assert _verify(gated, _tokens(gated, payer.email, 1)[0]).status_code == 204
    assert _top_up(gated, payer, _card(gated, payer)).status_code == 201
    paid = gated.request(
        "POST", "/v1/payments", payer.token, headers={"Idempotency-Key": str(uuid.uuid4())},
        json={"amount": 400, "currency": "USD", "payee_id": payee.id,
              "source": {"type": "balance"}},
    )  # fmt: skip
    assert paid.status_code == 201 and paid.json()["status"] == "succeeded", paid.text
    [entry] = wait_for_entries(gated, payer.token, payment_id=paid.json()["id"], type="payment")
    opened = gated.request("POST", f"/v1/transactions/{entry['id']}/disputes", payer.token,
                           json={"reason": "product_not_received"})  # fmt: skip
    assert opened.status_code == 201, opened.text
    resolve = f"/v1/admin/disputes/{opened.json()['id']}/resolve"
    # When the admin, whose email is not verified, resolves it as won
    refused = gated.request("POST", resolve, admin.token, json={"outcome": "won"})
    # Then it is 403 email_unverified, and no money moved: the dispute is still open
    assert _unverified(refused), refused.text
    assert (balance(gated, payer), balance(gated, payee)) == (600, 400)
    still = gated.request("GET", "/v1/admin/disputes?status=open&limit=100", admin.token)
    assert opened.json()["id"] in [d["id"] for d in still.json()["data"]]
    # ... and once the admin verifies, the same request refunds the payer
    resent = gated.request("POST", "/v1/users/me/verify-email/resend", admin.token)
    assert resent.status_code == 202, resent.text
    assert _verify(gated, _tokens(gated, ADMIN_EMAIL, 1)[0]).status_code == 204
    won = gated.request("POST", resolve, admin.token, json={"outcome": "won"})
    assert won.status_code == 200 and won.json()["status"] == "won", won.text
    assert (balance(gated, payer), balance(gated, payee)) == (1_000, 0)
