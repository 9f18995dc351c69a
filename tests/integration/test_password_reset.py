"""Password reset against moto (API.md "Account recovery", properties 43 and 45): the token
arrives by email through the embedded SES, is stored only as a hash, works once, and its
confirm replaces the password and ends every session, access tokens included."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes, policy
from typing import Any

import pytest
from moto.ses.models import ses_backends

from cashew import clock, dynamo
from local.cfn import ACCOUNT_ID, REGION
from local.events import api_event
from tests.integration.conftest import PASSWORD, authorize, signed_in
from tests.integration.test_iam_policies import COVERED_BY_RECOVERY, recorder  # noqa: F401

NEW_PASSWORD = "a brand new horse battery staple"


def _sent() -> list[Any]:
    return list(ses_backends[ACCOUNT_ID][REGION].sent_messages)


def _text(message: Any) -> str:
    parsed = message_from_bytes(message.raw_data.encode(), policy=policy.default)
    part = parsed.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def _mails_to(address: str) -> list[str]:
    return [_text(m) for m in _sent() if address in m.destinations]


def _request(stack, email: str):
    return stack.call("PasswordResetFunction", "auth/password_reset.json", body={"email": email})


def _token(stack, email: str) -> str:
    reply = _request(stack, email)
    assert reply.status == 202, reply.body
    match = re.search(r"#/reset\?token=([A-Za-z0-9_.\-%]+)", _mails_to(email)[-1])
    assert match, "the reset email carries a link with the token"
    return match.group(1)


def _confirm(stack, token: str, password: str = NEW_PASSWORD):
    return stack.call(
        "PasswordResetConfirmFunction",
        "auth/password_reset_confirm.json",
        body={"token": token, "new_password": password},
    )


def _login(stack, email: str, password: str):
    return stack.call(
        "LoginFunction", "auth/login.json", body={"email": email, "password": password}
    )


def test_a_reset_replaces_the_password_and_ends_every_session(stack, new_user):
    user = new_user()
    other = signed_in(stack, user.id, user.email)
    token = _token(stack, user.email)
    assert len(token.partition(".")[2]) >= 43  # 256 bits, base64url
    assert _confirm(stack, token).status == 204
    for session in (user, other):
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            authorize(stack, session.access_token)
        refreshed = stack.call(
            "RefreshFunction", "auth/refresh.json", body={"refresh_token": session.refresh_token}
        )
        assert refreshed.status == 401
    assert _login(stack, user.email, PASSWORD).status == 401
    assert _login(stack, user.email, NEW_PASSWORD).status == 200
    # the last email but the new-sign-in one of that login
    assert "signed in to from a new session" in _mails_to(user.email)[-1]
    assert "was reset" in _mails_to(user.email)[-2]


def test_the_token_is_stored_only_as_a_hash(stack, new_user):
    user = new_user()
    token = _token(stack, user.email)
    item = dynamo.get_item(stack.env["CASHEW_SESSIONS_TABLE"], {"pk": f"RESET#{user.id}"})
    assert item is not None
    secret = token.partition(".")[2]
    assert secret not in repr(item) and token not in repr(item)
    assert 0 < int(item["expires_at"]) - clock.epoch() <= 1800


def test_a_token_works_once(stack, new_user):
    user = new_user()
    token = _token(stack, user.email)
    assert _confirm(stack, token).status == 204
    again = _confirm(stack, token, "yet another horse battery")
    assert again.status == 400 and again.code == "invalid_token"


def test_a_newer_token_voids_the_older(stack, new_user):
    user = new_user()
    older = _token(stack, user.email)
    newer = _token(stack, user.email)
    voided = _confirm(stack, older)
    assert voided.status == 400 and voided.code == "invalid_token"
    assert _confirm(stack, newer).status == 204


def test_an_expired_token_is_invalid(stack, new_user, monkeypatch):
    user = new_user()
    token = _token(stack, user.email)
    later = clock.epoch() + 1801
    monkeypatch.setattr(clock, "epoch", lambda: later)
    expired = _confirm(stack, token)
    assert expired.status == 400 and expired.code == "invalid_token"


@pytest.mark.parametrize("token", ["", "x", "usr_x.y", "usr_01J8Z6Q9V7X3K2M4N5P6R7S8T9.abc"])
def test_malformed_or_unknown_tokens_are_invalid(stack, token):
    reply = _confirm(stack, token)
    assert reply.status in (400, 422)
    if token:
        assert reply.code == "invalid_token"


def test_another_users_secret_under_ones_own_id_is_invalid(stack, new_user):
    alice, bob = new_user(), new_user()
    alices = _token(stack, alice.email)
    _token(stack, bob.email)
    forged = f"{bob.id}.{alices.partition('.')[2]}"
    reply = _confirm(stack, forged)
    assert reply.status == 400 and reply.code == "invalid_token"


def test_concurrent_confirms_with_one_token_let_one_through(stack, new_user):
    user = new_user()
    token = _token(stack, user.email)
    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(r.status for r in pool.map(lambda _: _confirm(stack, token), range(8)))
    assert statuses == [204] + [400] * 7


def test_unknown_and_known_emails_answer_alike_and_the_limit_holds_for_both(stack, new_user):
    user = new_user()
    unknown = f"nobody-{user.id.lower()}@example.com"
    raw = [
        stack.invoke(
            "PasswordResetFunction", api_event("auth/password_reset.json", body={"email": e})
        )
        for e in (user.email, unknown)
    ]
    assert [r["statusCode"] for r in raw] == [202, 202]
    assert [r["body"] for r in raw] == ["{}", "{}"]  # Reply reads an empty object as None
    assert _mails_to(unknown) == []  # nothing goes to an address without an account
    for _ in range(4):
        assert _request(stack, user.email).status == 202
        assert _request(stack, unknown).status == 202
    for email in (user.email, unknown):
        limited = _request(stack, email)
        assert limited.status == 429 and limited.code == "too_many_attempts"
        assert 0 < int(limited.headers["Retry-After"]) <= 3600


def test_every_action_of_the_reset_functions_is_granted(stack, new_user, recorder):  # noqa: F811
    user = new_user()
    with recorder.acting_as("PasswordResetFunction"):
        assert _request(stack, f"nobody-{user.id.lower()}@example.com").status == 202
        token = _token(stack, user.email)
    with recorder.acting_as("PasswordResetConfirmFunction"):
        assert _confirm(stack, "usr_01J8Z6Q9V7X3K2M4N5P6R7S8T9.x").status == 400
        assert _confirm(stack, token).status == 204
    assert set(recorder.used) == COVERED_BY_RECOVERY
    assert recorder.ungranted() == {}
    for function_id in COVERED_BY_RECOVERY:
        assert ("ses:SendEmail", "EmailIdentity") in recorder.used[function_id]
