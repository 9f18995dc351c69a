"""Authentication over HTTP: refresh rotation and reuse, logout, sessions, password change,
lockout, and the local stack's first admin."""

from __future__ import annotations

import uuid

from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, PASSWORD


def _login(stack, email, password=PASSWORD):
    return stack.request("POST", "/v1/auth/login", json={"email": email, "password": password})


def _refresh(stack, token):
    return stack.request("POST", "/v1/auth/refresh", json={"refresh_token": token})


def test_refresh_rotates_and_a_reused_token_revokes_the_session(stack, new_user):
    user = new_user()
    rotated = _refresh(stack, user.refresh_token)
    assert rotated.status_code == 200
    pair = rotated.json()
    assert stack.request("GET", "/v1/users/me", pair["access_token"]).status_code == 200
    reused = _refresh(stack, user.refresh_token)
    assert (reused.status_code, reused.json()["code"]) == (401, "refresh_token_reused")
    assert stack.request("GET", "/v1/users/me", pair["access_token"]).status_code == 401
    assert _refresh(stack, pair["refresh_token"]).status_code == 401


def test_logout_takes_effect_on_the_very_next_request(stack, new_user):
    user = new_user()
    assert stack.request("GET", "/v1/users/me", user.token).status_code == 200
    assert stack.request("POST", "/v1/auth/logout", user.token).status_code == 204
    after = stack.request("GET", "/v1/users/me", user.token)
    assert (after.status_code, after.json()["code"]) == (401, "unauthenticated")
    assert _refresh(stack, user.refresh_token).status_code == 401


def test_sessions_can_be_listed_and_revoked_by_their_owner_only(stack, new_user):
    owner, other = new_user(), new_user()
    second = _login(stack, owner.email).json()
    listed = stack.request("GET", "/v1/auth/sessions", owner.token).json()
    assert {s["id"] for s in listed["data"]} >= {second["session_id"]}
    assert [s["current"] for s in listed["data"]].count(True) == 1
    path = f"/v1/auth/sessions/{second['session_id']}"
    assert stack.request("DELETE", path, other.token).status_code == 404
    assert stack.request("GET", "/v1/users/me", second["access_token"]).status_code == 200
    assert stack.request("DELETE", path, owner.token).status_code == 204
    assert stack.request("GET", "/v1/users/me", second["access_token"]).status_code == 401


def test_password_change_revokes_other_sessions_and_the_old_password(stack, new_user):
    user = new_user()
    other = _login(stack, user.email).json()
    new_password = "a brand new passphrase"
    changed = stack.request(
        "POST", "/v1/users/me/password", user.token,
        json={"current_password": PASSWORD, "new_password": new_password},
    )  # fmt: skip
    assert changed.status_code == 204
    assert stack.request("GET", "/v1/users/me", other["access_token"]).status_code == 401
    assert stack.request("GET", "/v1/users/me", user.token).status_code == 200
    assert _login(stack, user.email).status_code == 401
    assert _login(stack, user.email, new_password).status_code == 200


def test_lockout_is_429_with_retry_after_for_known_and_unknown_emails(stack, new_user):
    user = new_user()
    for email in (user.email, f"{uuid.uuid4().hex[:12]}@example.com"):
        statuses = [_login(stack, email, "wrong password!").status_code for _ in range(5)]
        assert statuses == [401] * 5
        locked = _login(stack, email, "wrong password!")
        assert locked.status_code == 429
        assert locked.json()["code"] == "too_many_attempts"
        assert int(locked.headers["Retry-After"]) > 0


def test_the_local_stack_creates_the_admin_from_the_environment(stack):
    login = _login(stack, ADMIN_EMAIL, ADMIN_PASSWORD)
    assert login.status_code == 200
    me = stack.request("GET", "/v1/users/me", login.json()["access_token"]).json()
    assert (me["email"], me["role"]) == (ADMIN_EMAIL, "admin")


def test_roles_cannot_be_self_assigned(stack, new_user):
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    created = stack.request(
        "POST",
        "/v1/users",
        json={"email": email, "password": PASSWORD, "name": "E", "role": "admin"},
    )
    assert created.status_code == 422
    user = new_user()
    patched = stack.request("PATCH", "/v1/users/me", user.token, json={"role": "admin"})
    assert patched.status_code == 422
    assert stack.request("GET", "/v1/users/me", user.token).json()["role"] == "user"
