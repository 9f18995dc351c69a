"""Refresh rotation, logout, sessions, password change and lockout, through the handlers."""

from __future__ import annotations

import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from cashew.auth import service
from cashew.auth.models import LoginResponse
from cashew.config import get_settings
from cashew.errors import RefreshTokenReusedError, UnauthenticatedError
from tests.integration.conftest import PASSWORD, authorize


def _refresh(stack, token):
    return stack.call("RefreshFunction", "auth/refresh.json", body={"refresh_token": token})


def _login(stack, email, password=PASSWORD, user_agent="test-agent/1"):
    return stack.call(
        "LoginFunction",
        "auth/login.json",
        body={"email": email, "password": password},
        headers={"User-Agent": user_agent},
    )


def _unauthorized(stack, access_token) -> bool:
    try:
        authorize(stack, access_token)
    except Exception as error:  # API Gateway's contract: the authorizer raises "Unauthorized"
        assert str(error) == "Unauthorized"
        return True
    return False


def test_refresh_rotates_the_pair_and_kills_the_old_refresh_token(stack, new_user):
    user = new_user()
    first = _refresh(stack, user.refresh_token)
    assert first.status == 200
    assert first.body["session_id"] == user.session_id
    assert first.body["refresh_token"] != user.refresh_token
    assert not _unauthorized(stack, first.body["access_token"])
    second = _refresh(stack, first.body["refresh_token"])
    assert second.status == 200


def test_presenting_a_rotated_refresh_token_revokes_the_whole_session(stack, new_user):
    # Given a session whose refresh token was rotated once
    user = new_user()
    rotated = _refresh(stack, user.refresh_token).body
    # When the old refresh token is presented again (it was stolen and replayed)
    reused = _refresh(stack, user.refresh_token)
    # Then it is refused as a reuse, and everything of the session stops working
    assert reused.status == 401
    assert reused.code == "refresh_token_reused"
    assert _refresh(stack, rotated["refresh_token"]).status == 401
    assert _unauthorized(stack, rotated["access_token"])
    assert _unauthorized(stack, user.access_token)


def test_concurrent_refreshes_with_one_token_succeed_at_most_once(stack, new_user):
    user = new_user()

    def attempt(_):
        try:
            return service.refresh(user.refresh_token)
        except (RefreshTokenReusedError, UnauthenticatedError) as error:
            return error

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(attempt, range(6)))
    assert sum(isinstance(r, LoginResponse) for r in results) <= 1


@pytest.mark.parametrize(
    "token",
    ["", "rt_", "rt_ses_x", "rt_ses_01ZZZZZZZZZZZZZZZZZZZZZZZZ.secret", "not-a-refresh-token"],
)
def test_invalid_refresh_tokens_are_401(stack, token):
    reply = _refresh(stack, token)
    assert reply.status in (401, 422)
    if token:
        assert (reply.status, reply.code) == (401, "unauthenticated")


def test_an_access_token_is_not_a_refresh_token(stack, new_user):
    user = new_user()
    assert _refresh(stack, user.access_token).status == 401


def test_logout_stops_the_access_and_refresh_tokens_at_once(stack, new_user):
    user = new_user()
    reply = stack.call("LogoutFunction", "auth/logout.json", authorizer=user.authorizer)
    assert reply.status == 204
    assert _unauthorized(stack, user.access_token)
    assert _refresh(stack, user.refresh_token).status == 401


def test_sessions_lists_live_sessions_and_marks_the_current_one(stack, new_user):
    user = new_user()
    other = _login(stack, user.email, user_agent="phone/2").body
    listed = stack.call(
        "ListSessionsFunction", "auth/list_sessions.json", authorizer=user.authorizer
    )
    assert listed.status == 200
    by_id = {s["id"]: s for s in listed.body["data"]}
    assert set(by_id) == {user.session_id, other["session_id"]}
    assert by_id[user.session_id]["current"] is True
    assert by_id[other["session_id"]]["current"] is False
    assert by_id[other["session_id"]]["user_agent"] == "phone/2"
    assert listed.body["has_more"] is False


def test_deleting_a_session_revokes_it_and_only_the_owner_can(stack, new_user):
    owner, stranger = new_user(), new_user()
    second = _login(stack, owner.email).body
    path = {"id": second["session_id"]}
    as_stranger = stack.call(
        "RevokeSessionFunction", "auth/revoke_session.json",
        authorizer=stranger.authorizer, path=path,
    )  # fmt: skip
    assert as_stranger.status == 404
    assert not _unauthorized(stack, second["access_token"])
    as_owner = stack.call(
        "RevokeSessionFunction", "auth/revoke_session.json", authorizer=owner.authorizer, path=path
    )
    assert as_owner.status == 204
    assert _unauthorized(stack, second["access_token"])
    assert not _unauthorized(stack, owner.access_token)


def test_changing_the_password_revokes_other_sessions_and_the_old_password(stack, new_user):
    user = new_user()
    other = _login(stack, user.email).body
    new_password = "an entirely new passphrase"
    wrong = stack.call(
        "ChangePasswordFunction", "auth/change_password.json", authorizer=user.authorizer,
        body={"current_password": "not the password", "new_password": new_password},
    )  # fmt: skip
    assert (wrong.status, wrong.code) == (401, "invalid_credentials")
    changed = stack.call(
        "ChangePasswordFunction", "auth/change_password.json", authorizer=user.authorizer,
        body={"current_password": PASSWORD, "new_password": new_password},
    )  # fmt: skip
    assert changed.status == 204
    assert _unauthorized(stack, other["access_token"])
    assert _refresh(stack, other["refresh_token"]).status == 401
    assert not _unauthorized(stack, user.access_token)  # the session that changed it lives on
    assert _login(stack, user.email).status == 401
    assert _login(stack, user.email, new_password).status == 200


def test_new_password_rules(stack, new_user):
    user = new_user()
    for new in (PASSWORD, "short"):
        reply = stack.call(
            "ChangePasswordFunction", "auth/change_password.json", authorizer=user.authorizer,
            body={"current_password": PASSWORD, "new_password": new},
        )  # fmt: skip
        assert reply.status == 422, new


def test_too_many_failures_lock_the_email_whether_or_not_it_exists(stack, new_user):
    user = new_user()
    unknown = f"{uuid.uuid4().hex[:12]}@example.com"
    limit = get_settings().login_max_failures
    for email in (user.email, unknown):
        for _ in range(limit):
            assert _login(stack, email, "wrong password!").status == 401
        locked = _login(stack, email, "wrong password!")
        assert locked.status == 429
        assert locked.code == "too_many_attempts"
        assert 0 < int(locked.headers["Retry-After"]) <= 15 * 60
    # even the right password waits out the lock
    assert _login(stack, user.email).status == 429


def test_a_successful_login_clears_the_failures(stack, new_user):
    user = new_user()
    limit = get_settings().login_max_failures
    for _ in range(limit - 1):
        assert _login(stack, user.email, "wrong password!").status == 401
    assert _login(stack, user.email).status == 200
    for _ in range(limit - 1):
        assert _login(stack, user.email, "wrong password!").status == 401
    assert _login(stack, user.email).status == 200


def test_unknown_email_and_wrong_password_cannot_be_told_apart(stack, new_user, monkeypatch):
    # Given a registered email, an unknown one, and no lockout in the way
    monkeypatch.setenv("CASHEW_LOGIN_MAX_FAILURES", "1000")
    get_settings.cache_clear()
    user = new_user()
    unknown = f"{uuid.uuid4().hex[:12]}@example.com"

    def timed(email):
        started = time.perf_counter()
        reply = _login(stack, email, "wrong password!")
        return time.perf_counter() - started, reply

    # When each is tried 30 times, interleaved
    samples = {"wrong_password": [], "unknown_email": []}
    replies = {}
    for _ in range(30):
        for name, email in (("wrong_password", user.email), ("unknown_email", unknown)):
            elapsed, replies[name] = timed(email)
            samples[name].append(elapsed)
    get_settings.cache_clear()
    # Then status, headers and body are the same (bar the request id)...
    wrong, missing = replies["wrong_password"], replies["unknown_email"]
    assert wrong.status == missing.status == 401
    strip = lambda body: {k: v for k, v in body.items() if k != "request_id"}  # noqa: E731
    assert strip(wrong.body) == strip(missing.body)
    assert set(wrong.headers) == set(missing.headers)
    # ...and the median latencies differ by less than 25%
    a, b = statistics.median(samples["wrong_password"]), statistics.median(samples["unknown_email"])
    assert abs(a - b) / max(a, b) < 0.25, (a, b)
