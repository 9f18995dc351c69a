"""Attacks on email verification over HTTP against the local stack (issue 13, "Done when"
1-3; API.md "Users and accounts"): tokens are read from the local inbox, as the user would
read them from the email. Used, voided, other users', forged and case-changed tokens are
400 `invalid_token`; 8 concurrent verifies with one token let exactly one through; resends
are limited; CASHEW_REQUIRE_VERIFIED_EMAIL (the template's RequireVerifiedEmail, on a stack
of its own) refuses an unverified user's money and lets it move at once after verifying;
and no token is left in clear in any table or log line. An expired token (24 h) is tested in
tests/integration/test_email_verification.py, where the clock can be moved."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

import pytest

from tests.e2e.conftest import PASSWORD, Stack, User, launch
from tests.support.secrets_seen import all_items

_LINK = re.compile(r"/#/verify-email\?token=([A-Za-z0-9_.%\-]+)")
SUBJECT = "Confirm your Cashew email address"


def _tokens(stack: Stack, address: str, count: int, timeout: float = 30) -> list[str]:
    """The verification tokens emailed to `address`, newest first, once there are `count`."""
    deadline = time.monotonic() + timeout
    while True:
        reply = stack.http.get(f"{stack.url}/_local/mail.json", params={"to": address}, timeout=10)
        assert reply.status_code == 200, reply.text
        mails = [m for m in reply.json()["data"] if m["subject"] == SUBJECT]
        if len(mails) >= count or time.monotonic() > deadline:
            found = [_LINK.search(m["text"]) for m in mails]
            assert all(found), "every verification email carries a link with its token"
            return [unquote(match.group(1)) for match in found if match]
        time.sleep(0.3)


def _register(stack: Stack) -> User:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    created = stack.request(
        "POST", "/v1/users", json={"email": email, "password": PASSWORD, "name": "Verifying"}
    )
    assert created.status_code == 201, created.text
    assert created.json()["email_verified"] is False
    login = stack.request("POST", "/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    body = login.json()
    return User(created.json()["id"], email, PASSWORD, body["access_token"], body["refresh_token"])


def _verify(stack: Stack, token: str):
    return stack.request("POST", "/v1/users/verify-email", json={"token": token})


def _resend(stack: Stack, user: User):
    return stack.request("POST", "/v1/users/me/verify-email/resend", user.token)


def _verified(stack: Stack, user: User) -> bool:
    me = stack.request("GET", "/v1/users/me", user.token)
    assert me.status_code == 200, me.text
    return bool(me.json()["email_verified"])


def _invalid(reply) -> bool:
    return reply.status_code == 400 and reply.json()["code"] == "invalid_token"


def test_the_emailed_token_verifies_once_and_the_user_shows_it(stack):
    user = _register(stack)
    assert _verified(stack, user) is False
    (token,) = _tokens(stack, user.email, 1)
    reply = _verify(stack, token)
    assert reply.status_code == 204, reply.text
    assert _verified(stack, user) is True
    assert _invalid(_verify(stack, token))  # used
    export = stack.request("GET", "/v1/users/me/export", user.token)
    assert export.status_code == 200 and export.json()["user"]["email_verified"] is True


def test_voided_other_users_forged_and_case_changed_tokens_are_invalid(stack):
    alice, bob = _register(stack), _register(stack)
    (voided,) = _tokens(stack, alice.email, 1)
    assert _resend(stack, alice).status_code == 202
    current = _tokens(stack, alice.email, 2)[0]
    (bobs,) = _tokens(stack, bob.email, 1)
    secret = current.partition(".")[2]
    attempts = {
        "voided by a resend": voided,
        "alice's secret under bob's id": f"{bob.id}.{secret}",
        "case changed": current.swapcase(),
        "secret case changed": f"{alice.id}.{secret.swapcase()}",
        "forged": f"{alice.id}.{'A' * len(secret)}",
        "unknown user": f"usr_01J8Z6Q9V7X3K2M4N5P6R7S8T9.{secret}",
        "no secret": f"{alice.id}.",
    }
    for name, token in attempts.items():
        assert _invalid(_verify(stack, token)), name
    assert not _verified(stack, alice) and not _verified(stack, bob)
    # ... none of which used up the live tokens
    assert _verify(stack, current).status_code == 204
    assert _verify(stack, bobs).status_code == 204


def test_8_concurrent_verifies_with_one_token_let_exactly_one_through(stack):
    user = _register(stack)
    (token,) = _tokens(stack, user.email, 1)
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda _: _verify(stack, token), range(8)))
    assert sorted(r.status_code for r in replies) == [204] + [400] * 7
    assert all(_invalid(r) for r in replies if r.status_code != 204)
    assert _verified(stack, user) is True


def test_resend_is_authenticated_limited_and_quiet_once_verified(stack):
    assert stack.request("POST", "/v1/users/me/verify-email/resend").status_code == 401
    user = _register(stack)
    for _ in range(5):
        reply = _resend(stack, user)
        assert reply.status_code == 202 and reply.json() == {}
    limited = _resend(stack, user)
    assert limited.status_code == 429 and limited.json()["code"] == "too_many_attempts"
    assert 0 < int(limited.headers["Retry-After"]) <= 3600
    tokens = _tokens(stack, user.email, 6)
    assert len(set(tokens)) == 6
    assert all(_invalid(_verify(stack, older)) for older in tokens[1:])  # each voided
    assert _verify(stack, tokens[0]).status_code == 204
    # Once verified, a resend (of another user, under the limit) answers 202 and sends nothing
    other = _register(stack)
    assert _verify(stack, _tokens(stack, other.email, 1)[0]).status_code == 204
    assert _resend(stack, other).status_code == 202
    assert len(_tokens(stack, other.email, 2, timeout=2)) == 1


def test_without_the_gate_an_unverified_user_moves_money(stack):
    user = _register(stack)
    card = _card(stack, user)
    assert _top_up(stack, user, card).status_code == 201


def test_no_verification_token_is_stored_or_logged_in_clear(stack):
    user = _register(stack)
    assert _resend(stack, user).status_code == 202
    tokens = _tokens(stack, user.email, 2)
    assert _verify(stack, tokens[0]).status_code == 204
    stored, logs = all_items(stack.aws_url), stack.logs()
    assert stored and f"VERIFY#{_register(stack).id}" in all_items(stack.aws_url)
    for token in tokens:
        secret = token.partition(".")[2]
        assert secret not in stored, "a verification token stored in DynamoDB"
        if stack.log_path is not None:
            assert secret not in logs, "a verification token in the logs"


# -- the gate on: a stack of its own ---------------------------------------------------------


@pytest.fixture(scope="module")
def gated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    log_path = tmp_path_factory.mktemp("verified-email-stack") / "dev.log"
    with launch(log_path, CASHEW_LOCAL_PARAMETERS="RequireVerifiedEmail=true") as launched:
        if launched.exit_code is not None:
            pytest.fail(f"the local stack did not come up:\n{log_path.read_text()[-4000:]}")
        yield launched.stack
        launched.stop()


def _card(stack: Stack, user: User) -> str:
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    reply = stack.request("POST", "/v1/users/me/payment-methods", user.token, json={"card": card})
    assert reply.status_code == 201, reply.text  # a card moves no money: not gated
    return str(reply.json()["id"])


def _top_up(stack: Stack, user: User, card: str, key: str | None = None):
    return stack.request(
        "POST", "/v1/top-ups", user.token,
        headers={"Idempotency-Key": key or str(uuid.uuid4())},
        json={"amount": 1_000, "currency": "USD", "payment_method_id": card},
    )  # fmt: skip


def _pay(stack: Stack, payer: User, payee: User, source: dict, capture: bool = True):
    return stack.request(
        "POST", "/v1/payments", payer.token,
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={"amount": 100, "currency": "USD", "payee_id": payee.id, "source": source,
              "capture": capture},
    )  # fmt: skip


def _unverified(reply) -> bool:
    return reply.status_code == 403 and reply.json()["code"] == "email_unverified"


def test_with_the_gate_money_waits_for_a_verified_email_and_then_moves_at_once(gated):
    payer, payee = _register(gated), _register(gated)
    card = _card(gated, payer)
    key = str(uuid.uuid4())
    # An unverified payer: top-up and payments refused, nothing written
    refused = _top_up(gated, payer, card, key)
    assert _unverified(refused), refused.text
    assert _unverified(_pay(gated, payer, payee, {"type": "card", "payment_method_id": card}))
    assert _unverified(_pay(gated, payer, payee, {"type": "balance"}))
    payments = gated.request("GET", "/v1/payments", payer.token).json()["data"]
    assert payments == []
    # Verified: the same access token, the same idempotency key, moves money at once (the
    # refusal recorded nothing under the key)
    assert _verify(gated, _tokens(gated, payer.email, 1)[0]).status_code == 204
    assert _top_up(gated, payer, card, key).status_code == 201
    held = _pay(gated, payer, payee, {"type": "card", "payment_method_id": card}, capture=False)
    assert held.status_code == 201 and held.json()["status"] == "requires_capture", held.text
    paid = _pay(gated, payer, payee, {"type": "balance"})
    assert paid.status_code == 201, paid.text
    # The payee, unverified, may neither capture nor refund
    capture = f"/v1/payments/{held.json()['id']}/capture"
    refund = f"/v1/payments/{paid.json()['id']}/refunds"
    for path, body in ((capture, {}), (refund, {"amount": 50})):
        reply = gated.request(
            "POST", path, payee.token, headers={"Idempotency-Key": str(uuid.uuid4())}, json=body
        )
        assert _unverified(reply), (path, reply.text)
    assert _verify(gated, _tokens(gated, payee.email, 1)[0]).status_code == 204
    for path, body, status in ((capture, {}, 200), (refund, {"amount": 50}, 201)):
        reply = gated.request(
            "POST", path, payee.token, headers={"Idempotency-Key": str(uuid.uuid4())}, json=body
        )
        assert reply.status_code == status, (path, reply.text)


def test_with_the_gate_an_unverified_user_still_reads_and_manages_the_account(gated):
    user = _register(gated)
    assert gated.request("GET", "/v1/users/me", user.token).status_code == 200
    assert gated.request("GET", "/v1/users/me/balances", user.token).status_code == 200
    _card(gated, user)
    assert _resend(gated, user).status_code == 202
