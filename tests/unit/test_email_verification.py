"""Email verification without AWS: the token's shape and link, what the email says,
malformed tokens refused before any read, the stored records, and the gate's cost when off
(no AWS call) and its answer when on."""

from __future__ import annotations

from typing import Any

import pytest

from cashew.accounts import face as accounts
from cashew.accounts import store as accounts_store
from cashew.auth.recovery import store, verification
from cashew.config import get_settings
from cashew.errors import EmailUnverifiedError, InvalidTokenError
from cashew.notifications import security

USER = "usr_01J8Z6Q9V7X3K2M4N5P6R7S8T9"


def test_the_link_opens_the_web_clients_verify_page_with_the_token_after_the_hash():
    link = verification._link(f"{USER}.a-b_c")
    assert link == f"http://127.0.0.1:3000/#/verify-email?token={USER}.a-b_c"


def test_issue_stores_only_the_hash_of_a_256_bit_token_for_24_hours(monkeypatch):
    stored: list[store.VerifyToken] = []
    monkeypatch.setattr(store, "put_verification", stored.append)
    mail = verification.issue(USER, "ada@example.com", "Ada")
    token = mail.link.partition("token=")[2]
    user_id, _, secret = token.partition(".")
    assert user_id == USER and len(secret) >= 43  # secrets.token_urlsafe(32): 256 bits
    (record,) = stored
    assert record.token_hash == verification.token_hash(token)
    assert token not in repr(record) and secret not in repr(record)
    assert record.expires_at - verification.clock.epoch() == 24 * 3600
    assert (mail.to, record.email) == ("ada@example.com", "ada@example.com")
    again = verification.issue(USER, "ada@example.com", "Ada")
    assert again.link != mail.link


@pytest.mark.parametrize(
    "token", ["nodot", ".secret", "usr_x.secret", f"ses_{USER[4:]}.s", f"{USER}.",
              f"{USER.lower()}.secret"],
)  # fmt: skip
def test_malformed_tokens_are_invalid_without_a_read(token, monkeypatch):
    monkeypatch.setattr(store, "get_verification", lambda _: pytest.fail("read a malformed token"))
    with pytest.raises(InvalidTokenError):
        verification.verify(token)


def test_a_token_whose_hash_differs_is_invalid_without_a_write(monkeypatch):
    record = store.VerifyToken(USER, "ada@example.com", verification.token_hash(f"{USER}.right"),
                               "2026-12-01T00:00:00.000Z", 2**40)  # fmt: skip
    monkeypatch.setattr(store, "get_verification", lambda _: record)
    monkeypatch.setattr(
        verification.dynamo.Transaction, "write", lambda _: pytest.fail("wrote for a bad token")
    )
    for wrong in (f"{USER}.wrong", f"{USER}.RIGHT", f"{USER}.right "):
        with pytest.raises(InvalidTokenError):
            verification.verify(wrong)


def test_an_expired_token_is_invalid_without_a_write(monkeypatch):
    token = f"{USER}.secret"
    record = store.VerifyToken(USER, "ada@example.com", verification.token_hash(token),
                               "2026-12-01T00:00:00.000Z", 1_000)  # fmt: skip
    monkeypatch.setattr(store, "get_verification", lambda _: record)
    monkeypatch.setattr(verification.clock, "epoch", lambda: 1_000)
    monkeypatch.setattr(
        verification.dynamo.Transaction, "write", lambda _: pytest.fail("wrote for a bad token")
    )
    with pytest.raises(InvalidTokenError):
        verification.verify(token)


def test_the_verification_record_reads_back_from_its_item():
    record = store.VerifyToken(USER, "ada@example.com", "ab" * 32, "2026-12-01T00:00:00.000Z", 5)
    item = record.to_item()
    assert item["pk"] == f"VERIFY#{USER}"
    assert store.VerifyToken.from_item(item) == record


def test_only_a_stored_true_reads_as_verified():
    base = {"pk": f"USER#{USER}", "sk": "PROFILE", "id": USER, "email": "a@example.com",
            "name": "Ada", "phone": None, "role": "user", "settings": {},
            "created_at": "2026-12-01T00:00:00.000Z"}  # fmt: skip
    assert accounts_store.Profile.from_item(base).email_verified is False
    assert (
        accounts_store.Profile.from_item({**base, "email_verified": "true"}).email_verified is False
    )
    verified = accounts_store.Profile.from_item({**base, "email_verified": True})
    assert verified.email_verified is True
    assert verified.to_item()["email_verified"] is True
    assert "email_verified" not in accounts_store.Profile.from_item(base).to_item()


def test_the_verification_email_carries_the_link_and_its_words():
    link = f"http://app.example/#/verify-email?token={USER}.a&b"
    rendered = security.compose("verify_email", "Ada", link)
    assert rendered.subject == "Confirm your Cashew email address"
    assert link in rendered.text and "24 hours" in rendered.text
    assert f'href="http://app.example/#/verify-email?token={USER}.a&amp;b"' in rendered.html


def test_a_failed_send_at_registration_is_counted_and_never_raises(monkeypatch):
    monkeypatch.setattr(store, "put_verification", lambda _: None)

    def down(*_: Any) -> None:
        raise RuntimeError("SES is down")

    monkeypatch.setattr(security.ses, "send", down)
    metrics: list[str] = []
    monkeypatch.setattr(security.metrics, "add_metric", lambda name, **_: metrics.append(name))
    assert security.email_verification(USER, "ada@example.com", "Ada") is False
    assert "VerificationEmailFailed" in metrics


def test_the_gate_when_off_makes_no_aws_call(monkeypatch):
    monkeypatch.delenv("CASHEW_REQUIRE_VERIFIED_EMAIL", raising=False)
    get_settings.cache_clear()
    monkeypatch.setattr(accounts_store, "email_verified", lambda _: pytest.fail("read"))
    accounts.require_verified_email(USER)


@pytest.mark.parametrize(("verified", "refused"), [(False, True), (True, False)])
def test_the_gate_when_on_refuses_only_the_unverified(monkeypatch, verified, refused):
    monkeypatch.setenv("CASHEW_REQUIRE_VERIFIED_EMAIL", "true")
    get_settings.cache_clear()
    asked: list[str] = []
    monkeypatch.setattr(accounts_store, "email_verified", lambda u: asked.append(u) or verified)
    if refused:
        with pytest.raises(EmailUnverifiedError) as caught:
            accounts.require_verified_email(USER)
        assert (caught.value.status, caught.value.code) == (403, "email_unverified")
    else:
        accounts.require_verified_email(USER)
    assert asked == [USER]
