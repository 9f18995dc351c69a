"""What the password reset and the email verification share: their one-time tokens,
`<user id>.<secret>` (the secret 256 bits; only the SHA-256 of the whole token is stored, on
the user's one item of that purpose, so a newer token voids the older), the web client's link
that carries one, the check of a presented token, and the hourly limit on asking for one."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from collections.abc import Callable
from urllib.parse import quote

from aws_lambda_powertools.metrics import MetricUnit

from cashew import clock, ids
from cashew.auth import login_attempts
from cashew.auth.recovery.store import EmailedToken
from cashew.config import get_settings
from cashew.errors import TooManyAttemptsError
from cashew.observability import metrics

WINDOW_SECONDS = 3600


def new_token(user_id: str) -> str:
    return f"{user_id}.{secrets.token_urlsafe(32)}"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link(page: str, token: str) -> str:
    """The web client's `page` (its hash route) with `token`: after `#`, so no server's
    access log sees it."""
    return f"{get_settings().app_url.rstrip('/')}/#/{page}?token={quote(token, safe='')}"


def current(
    token: str, stored: Callable[[str], EmailedToken | None]
) -> tuple[str, EmailedToken] | None:
    """The presented token's hash and its user's stored record, when `token` is well formed
    and is that user's current, unexpired token; None otherwise (a malformed token reads
    nothing)."""
    user_id, _, secret = token.partition(".")
    if not secret or not ids.PATTERNS["usr"].fullmatch(user_id):
        return None
    presented = token_hash(token)
    record = stored(user_id)
    if (
        record is None
        or not hmac.compare_digest(presented, record.token_hash)
        or record.expires_at <= clock.epoch()
    ):
        return None
    return presented, record


def throttle(key: str, limit: int, metric: str, message: str) -> None:
    """Count one request under `key`; TooManyAttemptsError (counted as `metric`) when it is
    one more than `limit` in the last hour: the current hourly bucket plus the previous one,
    weighted by how much of it the last hour still covers, as the login lockout counts."""
    bucket, into = divmod(clock.epoch(), WINDOW_SECONDS)
    now, before = login_attempts.count(key, bucket, 2 * WINDOW_SECONDS)
    recent = now + math.ceil(before * (WINDOW_SECONDS - into) / WINDOW_SECONDS)
    if recent > limit:
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
        raise TooManyAttemptsError(message, headers={"Retry-After": str(WINDOW_SECONDS - into)})
