"""Session logic with in-memory fakes of the stores: lockout arithmetic, refresh token
parsing, password change rules. No AWS."""

from __future__ import annotations

from typing import Any

import pytest

from cashew import clock
from cashew.accounts import passwords
from cashew.accounts.store import Credentials, Profile, Settings
from cashew.auth import lockout, login_attempts, service, sessions
from cashew.errors import (
    InvalidCredentialsError,
    InvalidRequestError,
    TooManyAttemptsError,
    UnauthenticatedError,
)
from cashew.identity import Caller

WINDOW = lockout.WINDOW_SECONDS


class FakeCounter:
    def __init__(self, current: int, previous: int) -> None:
        self.counts = (current, previous)

    def __call__(self, key: str, bucket: int, keep_for: int) -> tuple[int, int]:
        current, previous = self.counts
        self.counts = (current + 1, previous)
        return self.counts


@pytest.fixture
def at(monkeypatch: pytest.MonkeyPatch):
    def freeze(epoch: int) -> None:
        monkeypatch.setattr(clock, "epoch", lambda: epoch)

    return freeze


@pytest.mark.parametrize(("before", "locked"), [(4, False), (5, True)])
def test_the_attempt_after_the_limit_is_refused(monkeypatch, at, before, locked):
    # Given `before` attempts in this bucket (the default limit is 5)
    at(100 * WINDOW + 60)
    monkeypatch.setattr(login_attempts, "count", FakeCounter(before, 0))
    # When one more is made
    if locked:
        with pytest.raises(TooManyAttemptsError) as refused:
            lockout.attempt("a@example.com")
        # Then it waits until the bucket rolls over
        assert refused.value.headers == {"Retry-After": str(WINDOW - 60)}
    else:
        lockout.attempt("a@example.com")


def test_the_previous_bucket_counts_as_much_as_still_falls_in_the_window(monkeypatch, at):
    # 5 attempts late in the previous bucket, 1 second into this one: all still within 15 min
    at(100 * WINDOW + 1)
    monkeypatch.setattr(login_attempts, "count", FakeCounter(0, 5))
    with pytest.raises(TooManyAttemptsError):
        lockout.attempt("a@example.com")
    # most of a window later, they have (almost) all aged out
    at(100 * WINDOW + WINDOW - 60)
    monkeypatch.setattr(login_attempts, "count", FakeCounter(0, 5))
    lockout.attempt("a@example.com")


def test_the_lock_is_per_email_however_it_is_spelled():
    assert lockout._key(" Ada@Example.COM ") == lockout._key("ada@example.com")
    assert lockout._key("ada@example.com") != lockout._key("bob@example.com")


@pytest.mark.parametrize(
    "token",
    ["", "rt_", "rt_ses_1", "ses_01ZZZZZZZZZZZZZZZZZZZZZZZZ.secret", "rt_ses_01ZZ.", "Bearer x"],
)
def test_malformed_refresh_tokens_are_unauthenticated(monkeypatch, token):
    looked_up: list[str] = []
    monkeypatch.setattr(sessions, "get", looked_up.append)
    with pytest.raises(UnauthenticatedError):
        service.refresh(token)


def _live_session(refresh_secret: str, **changes: Any) -> sessions.Session:
    fields: dict[str, Any] = {
        "id": "ses_01JCQ3F7A2B4C6D8E0F2G4H6J8",
        "user_id": "usr_01JCQ3F6Z4V8T2K9M1N5P7R3S6",
        "role": "user",
        "refresh_hash": service._refresh_hash(refresh_secret),
        "created_at": "2026-11-30T09:00:00.000Z",
        "last_used_at": "2026-11-30T09:00:00.000Z",
        "user_agent": "test",
        "expires_at": clock.epoch() + 3600,
        "revoked": False,
        "email": "ada@example.com",
    }
    fields.update(changes)
    return sessions.Session(**fields)


def test_a_revoked_or_expired_session_cannot_refresh(monkeypatch):
    for session in (
        _live_session("s3cret", revoked=True),
        _live_session("s3cret", expires_at=clock.epoch() - 1),
    ):
        monkeypatch.setattr(sessions, "get", lambda sid, s=session: s)
        with pytest.raises(UnauthenticatedError):
            service.refresh(f"rt_{session.id}.s3cret")


def test_a_wrong_secret_that_was_never_issued_is_not_a_reuse(monkeypatch):
    session = _live_session("s3cret")
    revoked: list[str] = []
    monkeypatch.setattr(sessions, "get", lambda sid: session)
    monkeypatch.setattr(sessions, "rotated_from", lambda h: None)
    monkeypatch.setattr(sessions, "revoke", lambda sid, uid: revoked.append(sid))
    with pytest.raises(UnauthenticatedError):
        service.refresh(f"rt_{session.id}.guess")
    assert revoked == []


@pytest.fixture
def account(monkeypatch):
    password_hash = passwords.hash_password("current passphrase")
    user_id = "usr_01JCQ3F6Z4V8T2K9M1N5P7R3S6"
    credentials = Credentials("ada@example.com", user_id, password_hash, "user", 0)
    profile = Profile(
        id=user_id,
        email="ada@example.com",
        name="Ada",
        phone=None,
        role="user",
        settings=Settings(),
        created_at="2026-11-30T09:00:00.000Z",
    )
    monkeypatch.setattr(service.accounts, "get_profile", lambda uid: profile)
    monkeypatch.setattr(service.accounts, "get_credentials", lambda email: credentials)
    monkeypatch.setattr(lockout, "attempt", lambda email: None)
    monkeypatch.setattr(lockout, "succeeded", lambda email: None)
    writes: list[tuple[Any, ...]] = []
    monkeypatch.setattr(service, "_new_password", lambda *a, **k: writes.append(a))
    monkeypatch.setattr(sessions, "revoke_all_except", lambda *a, **k: writes.append(a) or 0)
    return writes


CALLER = Caller("usr_01JCQ3F6Z4V8T2K9M1N5P7R3S6", "ses_01JCQ3F7A2B4C6D8E0F2G4H6J8", "user")


def test_a_password_change_needs_the_current_password(account):
    with pytest.raises(InvalidCredentialsError):
        service.change_password(CALLER, "not it", "a brand new passphrase")
    assert account == []


def test_the_new_password_must_differ(account):
    with pytest.raises(InvalidRequestError):
        service.change_password(CALLER, "current passphrase", "current passphrase")
    assert account == []


def test_a_password_change_revokes_every_other_session(account):
    service.change_password(CALLER, "current passphrase", "a brand new passphrase")
    assert account[-1] == (CALLER.user_id, CALLER.session_id)
