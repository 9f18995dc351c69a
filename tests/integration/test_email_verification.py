"""Email verification against moto (API.md "Users and accounts": `email_verified`, the
verification link, its resend, and CASHEW_REQUIRE_VERIFIED_EMAIL's gate of money-moving
POSTs). The token arrives by email through the embedded SES, is stored only as a hash, works
once; the gate is tested here, through the handlers with the setting on (the e2e attack
tests run it over HTTP on a stack of its own)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

import pytest

from cashew import aws, clock, dynamo
from cashew.config import get_settings
from tests.integration.conftest import PASSWORD, add_card, balance, pay, signed_in, top_up
from tests.integration.test_iam_policies import COVERED_BY_VERIFICATION, recorder  # noqa: F401
from tests.integration.test_password_reset import _mails_to

_LINK = re.compile(r"/#/verify-email\?token=([A-Za-z0-9_.%\-]+)")


def _register(stack, email: str | None = None):
    email = email or f"{uuid.uuid4().hex[:12]}@example.com"
    reply = stack.call(
        "RegisterFunction",
        "accounts/register.json",
        body={"email": email, "password": PASSWORD, "name": "Verifying User"},
    )
    assert reply.status == 201, reply.body
    return reply.body


def _token_of(email: str, index: int = -1) -> str:
    mails = [m for m in _mails_to(email) if "verify-email" in m]
    match = _LINK.search(mails[index])
    assert match, "the verification email carries a link with the token"
    return unquote(match.group(1))


def _verify(stack, token: str):
    return stack.call("VerifyEmailFunction", "accounts/verify_email.json", body={"token": token})


def _resend(stack, user):
    return stack.call(
        "ResendVerificationFunction",
        "accounts/resend_verification.json",
        authorizer=user.authorizer,
    )


def _me(stack, user) -> dict:
    reply = stack.call("GetMeFunction", "accounts/get_me.json", authorizer=user.authorizer)
    assert reply.status == 200, reply.body
    return dict(reply.body)


def _invalid(reply) -> bool:
    return reply.status == 400 and reply.code == "invalid_token"


def test_registration_emails_a_token_that_verifies_the_email_once(stack):
    created = _register(stack)
    assert created["email_verified"] is False
    user = signed_in(stack, created["id"], created["email"])
    assert _me(stack, user)["email_verified"] is False
    token = _token_of(created["email"])
    assert token.startswith(created["id"] + ".")
    assert len(token.partition(".")[2]) >= 43  # 256 bits, base64url
    assert _verify(stack, token).status == 204
    assert _me(stack, user)["email_verified"] is True
    assert _invalid(_verify(stack, token))  # used
    assert dynamo.get_item(stack.env["CASHEW_SESSIONS_TABLE"], {"pk": f"VERIFY#{user.id}"}) is None


def test_the_token_is_stored_only_as_a_hash_for_24_hours(stack):
    created = _register(stack)
    token = _token_of(created["email"])
    item = dynamo.get_item(stack.env["CASHEW_SESSIONS_TABLE"], {"pk": f"VERIFY#{created['id']}"})
    assert item is not None
    assert token not in repr(item) and token.partition(".")[2] not in repr(item)
    assert 86400 - 5 < int(item["expires_at"]) - clock.epoch() <= 86400
    assert item["email"] == created["email"]


def test_a_stored_user_without_the_attribute_reads_as_unverified(stack, new_user):
    user = new_user()
    table = stack.env["CASHEW_ACCOUNTS_TABLE"]
    dynamo.update_item(
        table, {"pk": f"USER#{user.id}", "sk": "PROFILE"}, "REMOVE email_verified", {}
    )
    assert _me(stack, user)["email_verified"] is False


def test_an_expired_token_is_invalid(stack, monkeypatch):
    created = _register(stack)
    token = _token_of(created["email"])
    later = clock.epoch() + 86401
    monkeypatch.setattr(clock, "epoch", lambda: later)
    assert _invalid(_verify(stack, token))


def test_a_resend_voids_the_older_token(stack):
    created = _register(stack)
    user = signed_in(stack, created["id"], created["email"])
    older = _token_of(created["email"])
    reply = _resend(stack, user)
    assert reply.status == 202 and reply.body in ({}, None)
    newer = _token_of(created["email"])
    assert newer != older
    assert _invalid(_verify(stack, older))
    assert _verify(stack, newer).status == 204


@pytest.mark.parametrize(
    "token", ["x", "usr_x.y", "usr_01J8Z6Q9V7X3K2M4N5P6R7S8T9.abc", "." * 10, "a" * 512]
)
def test_malformed_or_unknown_tokens_are_invalid(stack, token):
    assert _invalid(_verify(stack, token))


def test_an_empty_or_oversized_token_is_a_validation_error(stack):
    for token in ("", "a" * 513):
        reply = _verify(stack, token)
        assert reply.status == 422 and reply.code == "validation_error"


def test_forged_other_users_and_case_changed_tokens_are_invalid(stack):
    alice, bob = _register(stack), _register(stack)
    alices, bobs = _token_of(alice["email"]), _token_of(bob["email"])
    secret = alices.partition(".")[2]
    assert _invalid(_verify(stack, f"{bob['id']}.{secret}"))  # alice's secret under bob's id
    assert _invalid(_verify(stack, alices.swapcase()))
    flipped = alices[:-1] + ("A" if alices[-1] != "A" else "B")
    assert _invalid(_verify(stack, flipped))
    # None of it used up either token
    assert _verify(stack, alices).status == 204
    assert _verify(stack, bobs).status == 204


def test_concurrent_verifies_with_one_token_let_one_through(stack):
    created = _register(stack)
    token = _token_of(created["email"])
    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(r.status for r in pool.map(lambda _: _verify(stack, token), range(8)))
    assert statuses == [204] + [400] * 7


def test_a_resend_for_a_verified_email_answers_202_and_sends_nothing(stack):
    created = _register(stack)
    user = signed_in(stack, created["id"], created["email"])
    assert _verify(stack, _token_of(created["email"])).status == 204
    before = len(_mails_to(created["email"]))
    assert _resend(stack, user).status == 202
    assert len(_mails_to(created["email"])) == before
    assert dynamo.get_item(stack.env["CASHEW_SESSIONS_TABLE"], {"pk": f"VERIFY#{user.id}"}) is None


def test_a_live_token_of_a_verified_user_is_consumed_and_answers_204(stack):
    # A resend that raced a verify leaves a verified user with a live token
    created = _register(stack)
    user = signed_in(stack, created["id"], created["email"])
    first = _token_of(created["email"])
    assert _resend(stack, user).status == 202
    second = _token_of(created["email"])
    dynamo.update_item(
        stack.env["CASHEW_ACCOUNTS_TABLE"],
        {"pk": f"USER#{user.id}", "sk": "PROFILE"},
        "SET email_verified = :true",
        {":true": True},
    )
    assert _invalid(_verify(stack, first))
    assert _verify(stack, second).status == 204
    assert _invalid(_verify(stack, second))
    assert _me(stack, user)["email_verified"] is True


def test_a_token_for_an_address_no_longer_the_users_is_invalid(stack):
    created = _register(stack)
    token = _token_of(created["email"])
    dynamo.update_item(
        stack.env["CASHEW_ACCOUNTS_TABLE"],
        {"pk": f"USER#{created['id']}", "sk": "PROFILE"},
        "SET email = :other",
        {":other": "someone-else@example.com"},
    )
    assert _invalid(_verify(stack, token))


def test_resends_are_limited_to_5_an_hour(stack):
    created = _register(stack)
    user = signed_in(stack, created["id"], created["email"])
    for _ in range(5):
        assert _resend(stack, user).status == 202
    limited = _resend(stack, user)
    assert limited.status == 429 and limited.code == "too_many_attempts"
    assert 0 < int(limited.headers["Retry-After"]) <= 3600
    assert len([m for m in _mails_to(created["email"]) if "verify-email" in m]) == 6


def test_a_failed_verification_email_never_fails_the_registration(stack, monkeypatch):
    from cashew.notifications import ses

    def refuse(*_args, **_kwargs):
        raise RuntimeError("SES is down")

    monkeypatch.setattr(ses, "send", refuse)
    created = _register(stack)
    assert created["email_verified"] is False
    user = signed_in(stack, created["id"], created["email"])
    monkeypatch.undo()
    assert _resend(stack, user).status == 202  # a resend makes another
    assert _verify(stack, _token_of(created["email"])).status == 204


def test_a_failed_token_write_never_fails_the_registration(stack, monkeypatch):
    from cashew.auth.recovery import store

    def refuse(*_args, **_kwargs):
        raise RuntimeError("DynamoDB is down")

    monkeypatch.setattr(store, "put_verification", refuse)
    created = _register(stack)
    assert created["email_verified"] is False
    assert [m for m in _mails_to(created["email"]) if "verify-email" in m] == []


def test_the_export_shows_email_verified(stack):
    created = _register(stack)
    user = signed_in(stack, created["id"], created["email"])
    assert _verify(stack, _token_of(created["email"])).status == 204
    reply = stack.call("ExportMeFunction", "accounts/export_me.json", authorizer=user.authorizer)
    assert reply.status == 200, reply.body
    assert reply.body["user"]["email_verified"] is True


# -- the gate: CASHEW_REQUIRE_VERIFIED_EMAIL -------------------------------------------------


@pytest.fixture
def gate(monkeypatch) -> Iterator[None]:
    monkeypatch.setenv("CASHEW_REQUIRE_VERIFIED_EMAIL", "true")
    get_settings.cache_clear()
    yield
    monkeypatch.delenv("CASHEW_REQUIRE_VERIFIED_EMAIL")
    get_settings.cache_clear()


def _verified(stack, user) -> None:
    assert _resend(stack, user).status == 202
    assert _verify(stack, _token_of(user.email)).status == 204


def _payment(stack, user, method: str, path_id: str, key: str, body: dict | None = None):
    sample = {
        "CapturePaymentFunction": "payments/capture_payment.json",
        "CancelPaymentFunction": "payments/cancel_payment.json",
        "CreateRefundFunction": "payments/create_refund.json",
    }[method]
    return stack.call(
        method,
        sample,
        body=body,
        authorizer=user.authorizer,
        path={"id": path_id},
        headers={"Idempotency-Key": key},
    )


def _idempotency_items(stack) -> int:
    return len(aws.dynamodb().scan(TableName=stack.env["CASHEW_IDEMPOTENCY_TABLE"])["Items"])


def test_with_the_gate_every_money_post_of_an_unverified_user_is_403_before_any_write(
    stack, new_user, monkeypatch
):
    # Given (gate off) a payer with money and an authorised card payment to a payee
    payer, payee = new_user(), new_user()
    card = add_card(stack, payer)
    assert top_up(stack, payer, card, 10_000).status == 201
    paid = pay(stack, payer, payee.id, 500)
    assert paid.status == 201
    held = pay(
        stack,
        payer,
        payee.id,
        300,
        source={"type": "card", "payment_method_id": card},
        capture=False,
    )
    assert held.status == 201 and held.body["status"] == "requires_capture", held.body
    payments_before = aws.dynamodb().scan(TableName=stack.env["CASHEW_PAYMENTS_TABLE"])["Count"]
    keys_before = _idempotency_items(stack)
    balances = (balance(stack, payer), balance(stack, payee))

    # When the gate is on and neither has verified their email
    monkeypatch.setenv("CASHEW_REQUIRE_VERIFIED_EMAIL", "true")
    get_settings.cache_clear()
    try:
        refused = [
            top_up(stack, payer, card, 1_000),
            pay(stack, payer, payee.id, 100),
            _payment(stack, payee, "CapturePaymentFunction", held.body["id"], "k1", {}),
            _payment(stack, payer, "CancelPaymentFunction", held.body["id"], "k2"),
            _payment(stack, payee, "CreateRefundFunction", paid.body["id"], "k3", {"amount": 100}),
        ]
        # Then each is 403 email_unverified, and nothing was written
        assert [(r.status, r.code) for r in refused] == [(403, "email_unverified")] * 5
        assert all(r.body["type"].endswith("/email_unverified") for r in refused)
        assert aws.dynamodb().scan(TableName=stack.env["CASHEW_PAYMENTS_TABLE"])["Count"] == (
            payments_before
        )
        assert _idempotency_items(stack) == keys_before
        assert (balance(stack, payer), balance(stack, payee)) == balances
        # ... and verifying takes effect at once, with the same access tokens
        _verified(stack, payer)
        _verified(stack, payee)
        assert top_up(stack, payer, card, 1_000).status == 201
        assert pay(stack, payer, payee.id, 100).status == 201
        captured = _payment(stack, payee, "CapturePaymentFunction", held.body["id"], "k4", {})
        assert captured.status == 200, captured.body
        refund = _payment(
            stack, payee, "CreateRefundFunction", paid.body["id"], "k5", {"amount": 100}
        )
        assert refund.status == 201, refund.body
    finally:
        monkeypatch.delenv("CASHEW_REQUIRE_VERIFIED_EMAIL")
        get_settings.cache_clear()


def test_without_the_gate_unverified_users_move_money(stack, new_user):
    assert get_settings().require_verified_email is False
    payer, payee = new_user(), new_user()
    card = add_card(stack, payer)
    assert top_up(stack, payer, card, 1_000).status == 201
    assert pay(stack, payer, payee.id, 100).status == 201


def test_adding_a_card_is_not_gated(stack, new_user, gate):
    # A card moves no money (API.md's money-moving POSTs are those that need an
    # Idempotency-Key): an unverified user may add one
    user = new_user()
    add_card(stack, user)


def test_every_action_of_the_verification_functions_is_granted(stack, recorder):  # noqa: F811
    with recorder.acting_as("RegisterFunction"):
        created = _register(stack)
    user = signed_in(stack, created["id"], created["email"])
    with recorder.acting_as("ResendVerificationFunction"):
        assert _resend(stack, user).status == 202
    with recorder.acting_as("VerifyEmailFunction"):
        assert _invalid(_verify(stack, _token_of(created["email"], 0)))
        assert _verify(stack, _token_of(created["email"])).status == 204
    assert set(recorder.used) == {"RegisterFunction"} | COVERED_BY_VERIFICATION
    assert recorder.ungranted() == {}
    for function_id in ("RegisterFunction", "ResendVerificationFunction"):
        assert ("ses:SendEmail", "EmailIdentity") in recorder.used[function_id]


def test_every_action_of_the_gated_money_functions_is_granted(stack, new_user, recorder, gate):  # noqa: F811
    payer, payee = new_user(), new_user()
    for user in (payer, payee):
        _verified(stack, user)
    card = add_card(stack, payer)
    with recorder.acting_as("CreateTopUpFunction"):
        assert top_up(stack, payer, card, 10_000).status == 201
    with recorder.acting_as("CreatePaymentFunction"):
        paid = pay(stack, payer, payee.id, 500)
        held = pay(
            stack, payer, payee.id, 300,
            source={"type": "card", "payment_method_id": card}, capture=False,
        )  # fmt: skip
    held2 = pay(
        stack, payer, payee.id, 200,
        source={"type": "card", "payment_method_id": card}, capture=False,
    )  # fmt: skip
    with recorder.acting_as("CapturePaymentFunction"):
        assert (
            _payment(stack, payee, "CapturePaymentFunction", held.body["id"], "c", {}).status == 200
        )
    with recorder.acting_as("CancelPaymentFunction"):
        assert _payment(stack, payer, "CancelPaymentFunction", held2.body["id"], "x").status == 200
    with recorder.acting_as("CreateRefundFunction"):
        refund = _payment(stack, payee, "CreateRefundFunction", paid.body["id"], "r", {"amount": 1})
        assert refund.status == 201
    assert recorder.ungranted() == {}


def test_with_the_gate_an_unverified_admin_cannot_move_money_by_resolving_a_dispute(
    stack,
    new_user,
    new_admin,
    recorder,  # noqa: F811
    gate,
):
    # A won dispute refunds the payer from the payee's balance: it moves money as a refund
    # does, so the admin who resolves it is gated as an admin's POST .../refunds is
    from tests.integration.test_disputes import open_dispute, paid_entry, resolve

    payer, payee, admin = new_user(), new_user(), new_admin()
    _verified(stack, payer)
    stack.skip_changes()
    assert top_up(stack, payer, add_card(stack, payer), 1_000).status == 201
    payment = pay(stack, payer, payee.id, 600).body
    stack.settle()
    dispute = open_dispute(stack, payer, paid_entry(stack, payer, payment["id"])["id"]).body
    assert dispute["status"] == "open", dispute

    refused = resolve(stack, admin, dispute["id"], "won")
    assert (refused.status, refused.code) == (403, "email_unverified"), refused.body
    assert (balance(stack, payer), balance(stack, payee)) == (400, 600)
    stored = dynamo.get_item(get_settings().disputes_table, {"pk": dispute["id"]})
    assert stored is not None and stored["status"] == "open"
    assert "pending_outcome" not in stored  # nothing claimed

    _verified(stack, admin)
    with recorder.acting_as("ResolveDisputeFunction"):
        won = resolve(stack, admin, dispute["id"], "won")
    assert won.status == 200 and won.body["status"] == "won", won.body
    assert (balance(stack, payer), balance(stack, payee)) == (1_000, 0)
    assert recorder.ungranted() == {}
