"""TOTP MFA over HTTP, codes computed with pyotp from the enrolment secret; then a scan of
every table and log line for the secrets and recovery codes (issue 13, done-when 1 and 3)."""

from __future__ import annotations

import time

import pyotp

from tests.support.secrets_seen import all_items


def _enrol(stack, user) -> tuple[str, list[str]]:
    enrolled = stack.request(
        "POST", "/v1/users/me/mfa/totp", user.token, json={"password": user.password}
    )
    assert enrolled.status_code == 200, enrolled.text
    assert enrolled.headers["Cache-Control"] == "no-store"
    secret = enrolled.json()["secret"]
    assert pyotp.parse_uri(enrolled.json()["otpauth_uri"]).secret == secret
    code = pyotp.TOTP(secret).now()
    confirmed = stack.request(
        "POST", "/v1/users/me/mfa/totp/confirm", user.token, json={"code": code}
    )
    assert confirmed.status_code == 200, confirmed.text
    return secret, confirmed.json()["recovery_codes"]


def _next_code(secret: str) -> str:
    """The code of the next step (one step of drift is accepted): the current one was used."""
    return pyotp.TOTP(secret).at(time.time() + 30)


def _login(stack, user):
    return stack.request(
        "POST", "/v1/auth/login", json={"email": user.email, "password": user.password}
    )


def test_mfa_over_http_and_no_secret_in_clear_afterwards(stack, new_user):
    # Given a user who enrols and confirms
    user = new_user()
    secret, codes = _enrol(stack, user)
    me = stack.request("GET", "/v1/users/me", user.token).json()
    assert me["mfa_enabled"] is True and len(codes) == 10
    # When they log in: the password alone gives a challenge, no token
    first = _login(stack, user)
    assert first.status_code == 401 and first.json()["code"] == "mfa_required"
    assert set(first.json()) >= {"mfa_token", "request_id"} and "access_token" not in first.json()
    # Then a code of the authenticator completes it, once
    code = _next_code(secret)
    done = stack.request(
        "POST", "/v1/auth/login/mfa", json={"mfa_token": first.json()["mfa_token"], "code": code}
    )
    assert done.status_code == 200, done.text
    assert done.headers["Cache-Control"] == "no-store"
    assert stack.request("GET", "/v1/users/me", done.json()["access_token"]).status_code == 200
    replay = stack.request(
        "POST",
        "/v1/auth/login/mfa",
        json={"mfa_token": _login(stack, user).json()["mfa_token"], "code": code},
    )
    assert (replay.status_code, replay.json()["code"]) == (401, "invalid_mfa_code")
    # And a recovery code completes one, once
    token = _login(stack, user).json()["mfa_token"]
    by_recovery = stack.request(
        "POST", "/v1/auth/login/mfa", json={"mfa_token": token, "recovery_code": codes[0]}
    )
    assert by_recovery.status_code == 200, by_recovery.text
    token = _login(stack, user).json()["mfa_token"]
    again = stack.request(
        "POST", "/v1/auth/login/mfa", json={"mfa_token": token, "recovery_code": codes[0]}
    )
    assert (again.status_code, again.json()["code"]) == (401, "invalid_mfa_code")

    # Given another user with MFA, who disables it with password and code
    other = new_user()
    other_secret, other_codes = _enrol(stack, other)
    off = stack.request(
        "DELETE",
        "/v1/users/me/mfa/totp",
        other.token,
        json={"password": other.password, "code": _next_code(other_secret)},
    )
    assert off.status_code == 204, off.text
    assert stack.request("GET", "/v1/users/me", other.token).json()["mfa_enabled"] is False
    assert _login(stack, other).status_code == 200

    # Then no secret, recovery code or mfa_token is in any table or log line
    stored, logs = all_items(stack.aws_url), stack.logs()
    assert stored
    for value in [secret, other_secret, *codes, *other_codes, first.json()["mfa_token"]]:
        assert value not in stored, "a TOTP secret, recovery code or mfa_token stored in clear"
        if stack.log_path is not None:
            assert value not in logs, "a TOTP secret, recovery code or mfa_token logged"
    for value in [secret, *codes]:
        assert value.replace("-", "") not in stored
