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


# Every registration emails the verification link first (API.md "Users and accounts").
WELCOME = "Confirm your Cashew email address"


def _subjects(address: str) -> list[str]:
    sent: list[Any] = list(ses_backends[ACCOUNT_ID][REGION].sent_messages)
    return [
        str(message_from_bytes(m.raw_data.encode(), policy=policy.default)["Subject"])
        for m in sent
        if address in m.destinations
    ]


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
