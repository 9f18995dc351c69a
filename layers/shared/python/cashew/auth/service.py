"""Sessions: login, refresh with rotation and reuse detection, logout, listing, revocation,
and password changes."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from aws_lambda_powertools.metrics import MetricUnit

from cashew import clock, dynamo, ids
from cashew.accounts import face as accounts
from cashew.accounts import passwords
from cashew.auth import lockout, mfa, sessions, tokens
from cashew.auth.models import LoginResponse, SessionList, SessionResponse
from cashew.config import get_settings
from cashew.errors import (
    ConflictError,
    InvalidCredentialsError,
    InvalidMfaCodeError,
    InvalidRequestError,
    MfaRequiredError,
    NotFoundError,
    RefreshTokenReusedError,
    TooManyAttemptsError,
    UnauthenticatedError,
)
from cashew.identity import Caller
from cashew.observability import logger, metrics

REFRESH_PREFIX = "rt_"


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A login's new session: the pair to answer with, and whose session it is (for the
    new-sign-in security email the handler sends)."""

    user_id: str
    pair: LoginResponse


def _refresh_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _pair(session: sessions.Session, secret: str) -> LoginResponse:
    access, ttl = tokens.issue_access_token(session.user_id, session.id, session.role)
    return LoginResponse(
        access_token=access,
        expires_in=ttl,
        refresh_token=f"{REFRESH_PREFIX}{session.id}.{secret}",
        refresh_expires_in=max(0, session.expires_at - clock.epoch()),
        session_id=session.id,
    )


def login(email: str, password: str, user_agent: str) -> SignedIn:
    """A new session for valid credentials. Unknown email and wrong password are
    indistinguishable: same error, same lockout, and both verify a real argon2id hash."""
    email = email.strip().lower()
    try:
        lockout.attempt(email)
    except TooManyAttemptsError:
        metrics.add_metric(name="LoginThrottled", unit=MetricUnit.Count, value=1)
        raise
    credentials = accounts.get_credentials(email)
    if not passwords.verify_password(credentials.password_hash if credentials else None, password):
        metrics.add_metric(name="LoginFailed", unit=MetricUnit.Count, value=1)
        raise InvalidCredentialsError("email or password is incorrect")
    assert credentials is not None  # nosec B101 # False without a hash
    if passwords.needs_rehash(credentials.password_hash):
        accounts.replace_password_hash(
            email, credentials.password_hash, passwords.hash_password(password)
        )
    if mfa.enabled(credentials.user_id):
        # The password alone is not enough; the count of attempts is not cleared until the
        # second factor passes, so codes cannot be guessed past the lockout.
        token = mfa.start_challenge(
            credentials.user_id, email, credentials.role, credentials.password_version
        )
        metrics.add_metric(name="LoginMfaRequired", unit=MetricUnit.Count, value=1)
        raise MfaRequiredError(
            "a second factor is required: POST /v1/auth/login/mfa with this mfa_token",
            extensions={"mfa_token": token},
        )
    lockout.succeeded(email)
    pair = _start_session(
        credentials.user_id, credentials.role, email, credentials.password_version, user_agent
    )
    return SignedIn(credentials.user_id, pair)


def login_mfa(
    mfa_token: str, code: str | None, recovery_code: str | None, user_agent: str
) -> SignedIn:
    """The second step of a login with MFA: a live `mfa_token` and a code accepted once (or a
    recovery code, once). The challenge, the code and the session are written in one
    transaction, so of concurrent logins with one code exactly one gets a session."""
    challenge = mfa.live_challenge(mfa_token)
    if challenge is None:
        metrics.add_metric(name="LoginFailed", unit=MetricUnit.Count, value=1)
        raise UnauthenticatedError("the mfa_token is invalid, used or expired; log in again")
    try:
        used = mfa.second_factor(challenge, code, recovery_code)
    except (InvalidMfaCodeError, TooManyAttemptsError):
        metrics.add_metric(name="LoginFailed", unit=MetricUnit.Count, value=1)
        raise
    try:
        pair = _start_session(
            challenge.user_id,
            challenge.role,
            challenge.email,
            challenge.password_version,
            user_agent,
            also=used,
        )
    except dynamo.TransactionCanceled as exc:
        metrics.add_metric(name="LoginFailed", unit=MetricUnit.Count, value=1)
        if exc.failed("code"):  # replayed, or the recovery code used meanwhile
            mfa.wrong_code(challenge)
        if exc.failed("challenge"):
            raise UnauthenticatedError(
                "the mfa_token is invalid, used or expired; log in again"
            ) from exc
        raise
    lockout.succeeded(challenge.email)
    return SignedIn(challenge.user_id, pair)


def _start_session(
    user_id: str,
    role: str,
    email: str,
    password_version: int,
    user_agent: str,
    *,
    also: dynamo.Transaction | None = None,
) -> LoginResponse:
    secret = secrets.token_urlsafe(32)
    now = clock.utcnow_str()
    session = sessions.Session(
        id=ids.new_id("ses"),
        user_id=user_id,
        role=role,
        refresh_hash=_refresh_hash(secret),
        created_at=now,
        last_used_at=now,
        user_agent=user_agent[:256],
        expires_at=clock.epoch() + get_settings().refresh_token_ttl,
        revoked=False,
        email=email,
        password_version=password_version,
    )
    unless = accounts.password_unchanged_check(email, password_version)
    created = (
        sessions.create(session, unless=unless)
        if also is None
        else sessions.create(session, unless=unless, also=also)
    )
    if not created:  # the password changed while this login was being checked
        metrics.add_metric(name="LoginFailed", unit=MetricUnit.Count, value=1)
        raise InvalidCredentialsError("email or password is incorrect")
    metrics.add_metric(name="LoginSucceeded", unit=MetricUnit.Count, value=1)
    return _pair(session, secret)


def refresh(refresh_token: str) -> LoginResponse:
    """A new pair for the current refresh token of a live session; the old one dies.

    Presenting a refresh token that was already rotated away means it was copied: the whole
    session is revoked (RFC 9700 §4.14.2), however long ago it was rotated. Of two concurrent
    refreshes with one token, the conditional rotation lets at most one succeed; the other is
    a reuse. A session created under a password that has since changed cannot refresh.
    Each refresh is counted, `SessionRefreshed` or `RefreshFailed` (as logins are).
    """
    try:
        pair = _rotate(refresh_token)
    except (UnauthenticatedError, RefreshTokenReusedError):
        metrics.add_metric(name="RefreshFailed", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name="SessionRefreshed", unit=MetricUnit.Count, value=1)
    return pair


def _rotate(refresh_token: str) -> LoginResponse:
    invalid = UnauthenticatedError("the refresh token is invalid or expired")
    session_id, _, secret = refresh_token.removeprefix(REFRESH_PREFIX).partition(".")
    if not refresh_token.startswith(REFRESH_PREFIX) or not secret:
        raise invalid
    session = sessions.get(session_id)
    if session is None or not session.live(clock.epoch()):
        raise invalid
    presented = _refresh_hash(secret)
    if not hmac.compare_digest(presented, session.refresh_hash):
        if sessions.rotated_from(presented) == session.id:
            _reused(session)
        raise invalid
    credentials = accounts.get_credentials(session.email)
    if credentials is None or credentials.password_version != session.password_version:
        # the password changed: a session the change could not list (the index lags) ends here
        sessions.revoke(session.id, session.user_id)
        raise invalid
    new_secret = secrets.token_urlsafe(32)
    if not sessions.rotate(session, _refresh_hash(new_secret)):
        _reused(session)
    return _pair(session, new_secret)


def _reused(session: sessions.Session) -> None:
    sessions.revoke(session.id, session.user_id)
    logger.warning("refresh token reuse: session revoked", extra={"session_id": session.id})
    metrics.add_metric(name="RefreshTokenReused", unit=MetricUnit.Count, value=1)
    raise RefreshTokenReusedError("this refresh token was already used; the session is revoked")


def logout(caller: Caller) -> None:
    sessions.revoke(caller.session_id, caller.user_id)


def list_sessions(caller: Caller, limit: int, cursor: str | None) -> SessionList:
    page, next_cursor = sessions.list_live(caller.user_id, limit, cursor)
    return SessionList(
        data=[
            SessionResponse(
                id=s.id,
                created_at=s.created_at,
                last_used_at=s.last_used_at,
                user_agent=s.user_agent,
                current=s.id == caller.session_id,
            )
            for s in page
        ],
        has_more=next_cursor is not None,
        next_cursor=next_cursor,
    )


def revoke_session(caller: Caller, session_id: str) -> None:
    if not sessions.revoke(session_id, caller.user_id):
        raise NotFoundError("session not found")


def change_password(caller: Caller, current: str, new: str) -> None:
    """Requires the current password (counted like a login attempt); every other session of
    the user is revoked at once, and the old password stops working."""
    profile = accounts.get_profile(caller.user_id)
    if profile is None:
        raise NotFoundError("user not found")
    email = profile.email
    lockout.attempt(email)
    credentials = accounts.get_credentials(email)
    if credentials is None or not passwords.verify_password(credentials.password_hash, current):
        raise InvalidCredentialsError("the current password is incorrect")
    lockout.succeeded(email)
    if hmac.compare_digest(current.encode(), new.encode()):
        raise InvalidRequestError(
            "the new password must differ from the current one",
            errors=[{"field": "new_password", "message": "must differ from current_password"}],
        )
    new_hash = passwords.hash_password(new)
    _new_password(caller, credentials, new_hash)
    # The sessions the user index lists are revoked; one it does not list yet (created just
    # before) has ended all the same: the authorizer and refresh refuse a session of an
    # older password version.
    revoked = sessions.revoke_all_except(caller.user_id, caller.session_id)
    logger.info("password changed", extra={"other_sessions_revoked": revoked})


def _new_password(caller: Caller, credentials: accounts.Credentials, new_hash: str) -> None:
    """The new password on the credentials and the profile (its version bumped), and the
    caller's own session moved to that version (it proved the current password, and is the
    one session kept), in one transaction: no request of the caller's sees its session
    refused in between. ConflictError if the password changed meanwhile."""
    credentials_item, profile_item = accounts.new_password_items(credentials, new_hash)
    version = credentials.password_version + 1
    tx = dynamo.Transaction().add("credentials", credentials_item).add("profile", profile_item)
    tx.add("session", sessions.version_item(caller.session_id, caller.user_id, version))
    try:
        tx.write()
    except dynamo.TransactionCanceled as exc:
        if exc.failed("credentials"):
            raise ConflictError("the password was changed meanwhile; try again") from exc
        if exc.failed("session"):
            raise UnauthenticatedError("the session has ended") from exc
        raise
