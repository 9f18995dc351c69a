"""Security emails (API.md: "always sent, whatever `notify_email` says"): a password change
emails the user even with notifications off; an email that cannot be sent never fails the
request (it is logged and counted)."""

from __future__ import annotations

from email import message_from_bytes, policy
from typing import Any

from moto.ses.models import ses_backends

from cashew import aws
from cashew.notifications import security
from local.cfn import ACCOUNT_ID, REGION
from tests.integration.conftest import PASSWORD

NEW_PASSWORD = "a changed horse battery staple"
SIGN_IN = "New sign-in to your Cashew account"


# Every registration emails the verification link first (API.md "Users and accounts").
WELCOME = "Confirm your Cashew email address"


def _messages(address: str) -> list[Any]:
    sent: list[Any] = list(ses_backends[ACCOUNT_ID][REGION].sent_messages)
    return [
        message_from_bytes(m.raw_data.encode(), policy=policy.default)
        for m in sent
        if address in m.destinations
    ]


def _subjects(address: str, *, sign_ins: bool = False) -> list[str]:
    """The subjects of the emails to `address`, oldest first; without the new-sign-in emails
    (every login sends one: the fixtures' too) unless `sign_ins`."""
    subjects = [str(m["Subject"]) for m in _messages(address)]
    return subjects if sign_ins else [s for s in subjects if s != SIGN_IN]


def _sign_ins(address: str) -> list[Any]:
    return [m for m in _messages(address) if str(m["Subject"]) == SIGN_IN]


def _change(stack, user, new: str = NEW_PASSWORD):
    return stack.call(
        "ChangePasswordFunction",
        "auth/change_password.json",
        authorizer=user.authorizer,
        body={"current_password": PASSWORD, "new_password": new},
    )


def _mute(stack, user) -> None:
    muted = stack.call(
        "UpdateMeFunction",
        "accounts/update_me.json",
        authorizer=user.authorizer,
        body={"settings": {"notify_email": False}},
    )
    assert muted.status == 200, muted.body


def test_a_password_change_is_emailed_even_with_notifications_off(stack, new_user):
    user = new_user()
    _mute(stack, user)
    assert _change(stack, user).status == 204
    assert _subjects(user.email) == [WELCOME, "Your Cashew password was changed"]


def test_a_failed_security_email_never_fails_the_request(stack, new_user, monkeypatch):
    user = new_user()

    class Broken:
        def send_email(self, **_: Any) -> Any:
            raise RuntimeError("SES is down")

    monkeypatch.setattr(aws, "sesv2", Broken)
    assert _change(stack, user).status == 204
    assert _subjects(user.email) == [WELCOME]
    assert security.security_email(user.id, "password_changed") is False
    login = stack.call(
        "LoginFunction", "auth/login.json", body={"email": user.email, "password": NEW_PASSWORD}
    )
    assert login.status == 200


def test_the_reset_email_never_goes_to_a_muted_users_settings(stack, new_user):
    user = new_user()
    _mute(stack, user)
    reply = stack.call(
        "PasswordResetFunction", "auth/password_reset.json", body={"email": user.email}
    )
    assert reply.status == 202
    assert _subjects(user.email) == [WELCOME, "Reset your Cashew password"]


def _login(stack, email: str, password: str = PASSWORD, **variations: Any):
    return stack.call(
        "LoginFunction", "auth/login.json", body={"email": email, "password": password},
        **variations,
    )  # fmt: skip


def test_every_login_emails_a_new_sign_in_with_time_user_agent_and_ip(stack, new_user):
    # Given a user with notifications off, who signs in from a browser
    user = new_user()
    _mute(stack, user)
    before = len(_sign_ins(user.email))
    agent = "Mozilla/5.0 <b>Firefox</b>/133 " + "x" * 500
    login = _login(stack, user.email, headers={"User-Agent": agent})
    assert login.status == 200, login.body
    # Then one more new-sign-in email went out, naming when, from what and where
    sign_ins = _sign_ins(user.email)
    assert len(sign_ins) == before + 1
    newest = sign_ins[-1]
    text = newest.get_body(("plain",)).get_content()
    body = newest.get_body(("html",)).get_content()
    assert "UTC" in text and "203.0.113.7" in text and "203.0.113.7" in body
    assert "Mozilla/5.0 <b>Firefox</b>/133 xxx" in text and "x" * 300 not in text
    assert "&lt;b&gt;Firefox&lt;/b&gt;" in body and "<b>Firefox" not in body
    # And nothing of the session's secrets: no session id, access or refresh token
    pair = login.body
    secrets = (pair["session_id"], pair["access_token"], pair["refresh_token"],
               pair["refresh_token"].split(".")[-1])  # fmt: skip
    for secret in secrets:
        assert secret not in text and secret not in body


def test_a_refresh_or_a_failed_login_sends_no_sign_in_email(stack, new_user):
    user = new_user()
    before = len(_sign_ins(user.email))
    assert _login(stack, user.email, "not the password at all").status == 401
    refreshed = stack.call(
        "RefreshFunction", "auth/refresh.json", body={"refresh_token": user.refresh_token}
    )
    assert refreshed.status == 200, refreshed.body
    assert len(_sign_ins(user.email)) == before


def test_a_failed_sign_in_email_never_fails_the_login(stack, new_user, monkeypatch):
    user = new_user()

    class Broken:
        def send_email(self, **_: Any) -> Any:
            raise RuntimeError("SES is down")

    before = len(_sign_ins(user.email))
    monkeypatch.setattr(aws, "sesv2", Broken)
    login = _login(stack, user.email)
    assert login.status == 200 and login.body["access_token"]
    assert len(_sign_ins(user.email)) == before


def test_an_mfa_login_emails_the_sign_in_at_its_second_step_only(stack, new_user, monkeypatch):
    import pyotp

    from cashew.config import get_settings
    from tests.integration.test_mfa import _call, _enrolled, _step_back

    monkeypatch.setenv("CASHEW_LOGIN_MAX_FAILURES", "50")
    get_settings.cache_clear()
    user = new_user()
    secret, _ = _enrolled(stack, user)
    before = len(_sign_ins(user.email))
    challenge = _login(stack, user.email)
    assert challenge.status == 401 and challenge.body["code"] == "mfa_required"
    assert len(_sign_ins(user.email)) == before  # the password alone: no session, no email
    _step_back(stack, user)
    code = pyotp.TOTP(secret).now()
    signed_in = _call(
        stack, "LoginMfaFunction", "login_mfa", mfa_token=challenge.body["mfa_token"], code=code
    )
    assert signed_in.status == 200, signed_in.body
    get_settings.cache_clear()
    sign_ins = _sign_ins(user.email)
    assert len(sign_ins) == before + 1
    text = sign_ins[-1].get_body(("plain",)).get_content()
    assert "cashew-ios/1.4.2" in text and "203.0.113.7" in text
    assert signed_in.body["session_id"] not in text
