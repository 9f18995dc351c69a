"""Attacks on MFA over HTTP (issue 13, done-when 2): one code raced by 8 logins, replayed
codes and recovery codes, the password alone, a token of another user, MFA probing with a
wrong password. On a stack of its own with a roomy lockout (8 logins of one email would
otherwise be 429 before the race starts; the lockout itself is tested in integration)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pyotp
import pytest

from tests.e2e.conftest import PASSWORD, Stack, User, launch
from tests.e2e.test_mfa import _enrol, _login


@pytest.fixture(scope="module")
def roomy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    log_path = tmp_path_factory.mktemp("mfa-stack") / "dev.log"
    with launch(log_path, CASHEW_LOGIN_MAX_FAILURES="100") as launched:
        if launched.exit_code is not None:
            pytest.fail(f"the local stack did not come up:\n{log_path.read_text()[-4000:]}")
        yield launched.stack
        launched.stop()


def _user(stack: Stack, mfa: bool = True) -> tuple[User, str, list[str]]:
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    created = stack.request(
        "POST", "/v1/users", json={"email": email, "password": PASSWORD, "name": "Attacked"}
    )
    assert created.status_code == 201
    login = stack.request("POST", "/v1/auth/login", json={"email": email, "password": PASSWORD})
    body = login.json()
    user = User(created.json()["id"], email, PASSWORD, body["access_token"], body["refresh_token"])
    if not mfa:
        return user, "", []
    secret, codes = _enrol(stack, user)
    return user, secret, codes


@pytest.fixture
def mfa_user(roomy: Stack) -> tuple[User, str, list[str]]:
    return _user(roomy)


def _mfa(stack, token, **factor):
    return stack.request("POST", "/v1/auth/login/mfa", json={"mfa_token": token, **factor})


def test_eight_concurrent_logins_with_one_code_give_exactly_one_session(roomy, mfa_user):
    user, secret, _ = mfa_user
    tokens = [_login(roomy, user).json()["mfa_token"] for _ in range(8)]
    code = pyotp.TOTP(secret).at(time.time() + 30)  # the current step's code was used
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda t: _mfa(roomy, t, code=code), tokens))
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [200] + [401] * 7, [r.text for r in replies]
    assert {r.json()["code"] for r in replies if r.status_code == 401} == {"invalid_mfa_code"}


def test_eight_concurrent_uses_of_one_recovery_code_give_exactly_one_session(roomy, mfa_user):
    user, _, codes = mfa_user
    tokens = [_login(roomy, user).json()["mfa_token"] for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda t: _mfa(roomy, t, recovery_code=codes[5]), tokens))
    assert sorted(r.status_code for r in replies) == [200] + [401] * 7


def test_the_password_alone_never_yields_a_token(roomy, mfa_user):
    user, _, _ = mfa_user
    for _ in range(3):
        reply = _login(roomy, user)
        assert reply.status_code == 401
        body = reply.json()
        assert body["code"] == "mfa_required"
        assert not {"access_token", "refresh_token", "session_id"} & set(body)
        # the mfa_token is no bearer token and no refresh token
        token = body["mfa_token"]
        assert roomy.request("GET", "/v1/users/me", token).status_code == 401
        refreshed = roomy.request("POST", "/v1/auth/refresh", json={"refresh_token": token})
        assert refreshed.status_code == 401
        # and without a right code it yields nothing
        for factor in ({"code": "000000"}, {"recovery_code": "0000-0000-0000-0000"}):
            assert _mfa(roomy, token, **factor).status_code == 401
        assert _mfa(roomy, token).status_code == 422


def test_a_code_of_another_user_is_no_use_with_the_victims_token(roomy, mfa_user):
    victim, _, _ = mfa_user
    _, attacker_secret, attacker_codes = _user(roomy)
    victim_token = _login(roomy, victim).json()["mfa_token"]
    # the attacker's own valid code and recovery code are checked against the victim's factor
    mine = _mfa(roomy, victim_token, code=pyotp.TOTP(attacker_secret).at(time.time() + 30))
    assert (mine.status_code, mine.json()["code"]) == (401, "invalid_mfa_code")
    mine = _mfa(roomy, victim_token, recovery_code=attacker_codes[0])
    assert (mine.status_code, mine.json()["code"]) == (401, "invalid_mfa_code")


def test_a_wrong_password_never_reveals_whether_mfa_is_on(roomy, mfa_user):
    user, _, _ = mfa_user
    plain, _, _ = _user(roomy, mfa=False)
    wrong = "wrong password!"
    a = roomy.request("POST", "/v1/auth/login", json={"email": user.email, "password": wrong})
    b = roomy.request("POST", "/v1/auth/login", json={"email": plain.email, "password": wrong})
    assert a.status_code == b.status_code == 401
    strip = lambda r: {k: v for k, v in r.json().items() if k != "request_id"}  # noqa: E731
    assert strip(a) == strip(b)


def test_five_wrong_codes_kill_the_mfa_token(roomy, mfa_user):
    user, secret, _ = mfa_user
    token = _login(roomy, user).json()["mfa_token"]
    good = pyotp.TOTP(secret).at(time.time() + 30)
    wrong = f"{(int(good) + 500000) % 10**6:06d}"
    for _ in range(5):
        assert _mfa(roomy, token, code=wrong).json()["code"] == "invalid_mfa_code"
    late = _mfa(roomy, token, code=good)
    assert (late.status_code, late.json()["code"]) == (401, "unauthenticated")
