"""Login: credentials in, a session and a token pair out."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from aws_lambda_powertools.metrics import MetricUnit

from cashew import clock, ids
from cashew.accounts import store as accounts
from cashew.auth import passwords, sessions, tokens
from cashew.config import get_settings
from cashew.errors import InvalidCredentialsError
from cashew.observability import metrics

REFRESH_PREFIX = "rt_"


@dataclass(frozen=True, slots=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    session_id: str


def _refresh_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def login(email: str, password: str, user_agent: str) -> TokenPair:
    """A new session for valid credentials. Unknown email and wrong password are
    indistinguishable: same error, and both verify a real argon2id hash."""
    credentials = accounts.get_credentials(email.lower())
    if not passwords.verify_password(credentials.password_hash if credentials else None, password):
        metrics.add_metric(name="LoginFailed", unit=MetricUnit.Count, value=1)
        raise InvalidCredentialsError("email or password is incorrect")
    assert credentials is not None  # verify_password is False without a hash
    if passwords.needs_rehash(credentials.password_hash):
        accounts.replace_password_hash(
            email.lower(), credentials.password_hash, passwords.hash_password(password)
        )
    settings = get_settings()
    secret = secrets.token_urlsafe(32)
    now = clock.utcnow_str()
    session = sessions.Session(
        id=ids.new_id("ses"),
        user_id=credentials.user_id,
        role=credentials.role,
        refresh_hash=_refresh_hash(secret),
        created_at=now,
        last_used_at=now,
        user_agent=user_agent[:256],
        expires_at=clock.epoch() + settings.refresh_token_ttl,
        revoked=False,
    )
    sessions.create(session)
    metrics.add_metric(name="LoginSucceeded", unit=MetricUnit.Count, value=1)
    access, ttl = tokens.issue_access_token(session.user_id, session.id, session.role)
    return TokenPair(
        access_token=access,
        expires_in=ttl,
        refresh_token=f"{REFRESH_PREFIX}{session.id}.{secret}",
        refresh_expires_in=settings.refresh_token_ttl,
        session_id=session.id,
    )
