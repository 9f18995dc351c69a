"""Login throttling per account (OWASP): more than CASHEW_LOGIN_MAX_FAILURES attempts for one
email within 15 minutes answer 429 with Retry-After, whether or not the email exists.

Every attempt is counted atomically before the password is checked, so parallel guesses
cannot slip past the limit, and a successful login clears the count. Counts are kept per
15-minute bucket; the window is the current bucket plus the previous one weighted by how
much of it still falls within the last 15 minutes (rounded up, so the limit is never
undercounted at a bucket boundary)."""

from __future__ import annotations

import hashlib
import math

from cashew import clock
from cashew.auth import login_attempts
from cashew.config import get_settings
from cashew.errors import TooManyAttemptsError

WINDOW_SECONDS = 15 * 60


def _key(email: str) -> str:
    return "LOGIN#" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


def attempt(email: str) -> None:
    """Count an attempt for `email`; TooManyAttemptsError when it is one too many."""
    now = clock.epoch()
    bucket, into = divmod(now, WINDOW_SECONDS)
    current, previous = login_attempts.count(_key(email), bucket, 2 * WINDOW_SECONDS)
    recent = current + math.ceil(previous * (WINDOW_SECONDS - into) / WINDOW_SECONDS)
    if recent > get_settings().login_max_failures:
        raise TooManyAttemptsError(
            "too many attempts for this account; try again later",
            headers={"Retry-After": str(WINDOW_SECONDS - into)},
        )


def succeeded(email: str) -> None:
    login_attempts.clear(_key(email), clock.epoch() // WINDOW_SECONDS)
