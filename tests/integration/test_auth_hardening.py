"""What a security review of the session code found, held as tests: reuse detection for the
whole life of a session, logins racing a password change, the first admin, malformed input."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from cashew.auth import lockout, service, sessions
from cashew.auth.admins import create_admin
from cashew.config import get_settings
from cashew.errors import ConflictError
from cashew.identity import Caller
from local.events import api_event
from tests.integration.conftest import PASSWORD, authorize
from tests.support.lambda_runtime import reply


def _refresh(stack, token):
    return stack.call("RefreshFunction", "auth/refresh.json", body={"refresh_token": token})


def _login(stack, email, password=PASSWORD):
    return stack.call(
        "LoginFunction", "auth/login.json", body={"email": email, "password": password}
    )


def _alive(stack, access_token) -> bool:
    try:
        authorize(stack, access_token)
    except Exception:  # the authorizer's "Unauthorized"
        return False
    return True


def test_reuse_is_detected_however_many_rotations_ago(stack, new_user):
    # Given a stolen refresh token, and a thief who rotated the session 25 times since
    victim = new_user()
    stolen, token = victim.refresh_token, victim.refresh_token
    for _ in range(25):
        rotated = _refresh(stack, token)
        assert rotated.status == 200
        token, access = rotated.body["refresh_token"], rotated.body["access_token"]
    # When the victim's client presents the token it holds
    replay = _refresh(stack, stolen)
    # Then it is recognised as a reuse and the thief's session dies with it
    assert (replay.status, replay.code) == (401, "refresh_token_reused")
    assert not _alive(stack, access)
    assert _refresh(stack, token).status == 401


def test_a_session_id_alone_cannot_revoke_a_session(stack, new_user):
    user = new_user()
    forged = f"rt_{user.session_id}.{'A' * 43}"
    assert (_refresh(stack, forged).status, _refresh(stack, forged).code) == (
        401,
        "unauthenticated",
    )
    assert _alive(stack, user.access_token)
    assert _refresh(stack, user.refresh_token).status == 200


def test_a_login_racing_a_password_change_gets_no_session(stack, new_user, monkeypatch):
    # Given a login that has verified the old password when the password changes
    user = new_user()
    real_create = sessions.create

    def change_first(session, *, unless):
        monkeypatch.setattr(sessions, "create", real_create)
        service.change_password(
            Caller(user.id, user.session_id, "user"), PASSWORD, "a brand new passphrase"
        )
        return real_create(session, unless=unless)

    monkeypatch.setattr(sessions, "create", change_first)
    # When the login goes on to create its session, Then it is refused
    assert _login(stack, user.email).status == 401
    assert _login(stack, user.email, "a brand new passphrase").status == 200


def test_a_session_the_password_change_missed_cannot_refresh(stack, new_user, monkeypatch):
    # Given a second session that the change does not list (as when the index lags)
    user = new_user()
    other = _login(stack, user.email).body
    monkeypatch.setattr(sessions, "revoke_all_except", lambda *a, **k: 0)
    service.change_password(
        Caller(user.id, user.session_id, "user"), PASSWORD, "another passphrase!"
    )
    # Then its refresh token no longer works, and the session is revoked
    assert _refresh(stack, other["refresh_token"]).status == 401
    assert not _alive(stack, other["access_token"])


def test_create_admin_never_promotes_someone_elses_account(stack):
    email = f"ops-{uuid.uuid4().hex[:8]}@example.com"
    squat = stack.call(
        "RegisterFunction", "accounts/register.json",
        body={"email": email, "password": "attacker password 1", "name": "x"},
    )  # fmt: skip
    assert squat.status == 201
    with pytest.raises(ConflictError):
        create_admin(email, "the operator's own passphrase")
    attacker = _login(stack, email, "attacker password 1")
    assert authorize(stack, attacker.body["access_token"])["context"]["role"] == "user"


def test_login_attempts_are_kept_in_a_bounded_item(stack, new_user, monkeypatch):
    # Given an email hammered far beyond the limit
    monkeypatch.setenv("CASHEW_LOGIN_MAX_FAILURES", "3")
    get_settings.cache_clear()
    try:
        user = new_user()
        for _ in range(40):
            _login(stack, user.email, "wrong password!")
        # Then the counter item holds a few counts, not a list of every attempt
        item = stack.clients("dynamodb").get_item(
            TableName=stack.env["CASHEW_SESSIONS_TABLE"],
            Key={"pk": {"S": lockout._key(user.email)}},
        )["Item"]
        assert len(item) <= 4  # pk, expires_at and at most two buckets
        assert _login(stack, user.email).status == 429
    finally:
        get_settings.cache_clear()


def test_a_refresh_token_that_is_not_utf8_is_422(stack, new_user):
    user = new_user()
    event = api_event("auth/refresh.json")
    event["body"] = '{"refresh_token": "rt_' + user.session_id + '.\\ud800"}'
    assert reply(stack.invoke("RefreshFunction", event)).status == 422


@pytest.mark.parametrize(
    "forged",
    [
        {"pk": "ses_x", "created_at": ["x"]},
        {"pk": "ses_x", "created_at": 1.5},
        {"pk": 1, "created_at": "2026-01-01T00:00:00.000Z"},
        {"pk": None, "created_at": "2026-01-01T00:00:00.000Z"},
    ],
)
def test_a_forged_sessions_cursor_is_422(stack, new_user, forged):
    user = new_user()
    cursor = base64.urlsafe_b64encode(json.dumps({**forged, "user_id": user.id}).encode()).decode()
    listed = stack.call(
        "ListSessionsFunction", "auth/list_sessions.json",
        authorizer=user.authorizer, query={"cursor": cursor},
    )  # fmt: skip
    assert (listed.status, listed.code) == (422, "validation_error")
