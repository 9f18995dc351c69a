"""The new-sign-in security email over HTTP (API.md: security emails go for "a sign-in from
a new session", whatever notify_email says), read from the local inbox: one per login that
makes a session (with and without MFA), none for the password step of an MFA login or for a
refresh; it names the time, the client's user agent and address, and no secret."""

from __future__ import annotations

import time
from typing import Any

from tests.e2e.test_mfa import _enrol, _next_code

SIGN_IN = "New sign-in to your Cashew account"


def _sign_ins(stack, address: str) -> list[dict[str, Any]]:
    """The address's new-sign-in emails, newest first (each is sent by the login's own
    request, so it is in the inbox when the login answers)."""
    reply = stack.http.get(f"{stack.url}/_local/mail.json", params={"to": address}, timeout=10)
    assert reply.status_code == 200, reply.text
    return [m for m in reply.json()["data"] if m["subject"] == SIGN_IN]


def _login(stack, user, agent: str):
    return stack.request(
        "POST", "/v1/auth/login", headers={"User-Agent": agent},
        json={"email": user.email, "password": user.password},
    )  # fmt: skip


def test_a_login_emails_when_from_what_and_where_even_with_notifications_off(stack, new_user):
    # Given a user who turned emails off, and signs in again from a browser
    user = new_user()
    muted = stack.request("PATCH", "/v1/users/me", user.token,
                          json={"settings": {"notify_email": False}})  # fmt: skip
    assert muted.status_code == 200, muted.text
    before = len(_sign_ins(stack, user.email))
    assert before == 1  # the fixture's own login
    agent = "Mozilla/5.0 <img src=x onerror=alert(1)> Gecko/20100101 Firefox/133.0"
    login = _login(stack, user, agent)
    assert login.status_code == 200, login.text
    # Then one more new-sign-in email is there, with the time, the agent and the address
    mails = _sign_ins(stack, user.email)
    assert len(mails) == before + 1
    mail = mails[0]
    assert time.strftime("%Y", time.gmtime()) in mail["text"] and "UTC" in mail["text"]
    assert agent in mail["text"] and "127.0.0.1" in mail["text"]
    assert "&lt;img src=x onerror=alert(1)&gt;" in mail["html"] and "<img" not in mail["html"]
    # ... and none of the session's secrets
    pair = login.json()
    for secret in (pair["session_id"], pair["access_token"], pair["refresh_token"],
                   pair["refresh_token"].rsplit(".", 1)[1], user.password):  # fmt: skip
        assert secret not in mail["text"] and secret not in mail["html"]
    # When the session is refreshed, no email goes
    refreshed = stack.request(
        "POST", "/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    assert len(_sign_ins(stack, user.email)) == before + 1


def test_an_mfa_login_emails_once_its_second_step_made_the_session(stack, new_user):
    user = new_user()
    secret, _ = _enrol(stack, user)
    before = len(_sign_ins(stack, user.email))
    first = _login(stack, user, "cashew-e2e/1.0")
    assert first.status_code == 401 and first.json()["code"] == "mfa_required"
    assert len(_sign_ins(stack, user.email)) == before  # the password alone: no email
    done = stack.request(
        "POST", "/v1/auth/login/mfa", headers={"User-Agent": "cashew-e2e/1.0"},
        json={"mfa_token": first.json()["mfa_token"], "code": _next_code(secret)},
    )  # fmt: skip
    assert done.status_code == 200, done.text
    mails = _sign_ins(stack, user.email)
    assert len(mails) == before + 1
    assert "cashew-e2e/1.0" in mails[0]["text"] and "127.0.0.1" in mails[0]["text"]
    assert done.json()["session_id"] not in mails[0]["text"]
