"""Login throttling per account (OWASP): after too many attempts for one email within the
window, 429 with Retry-After, whether or not the email exists. Every attempt is counted
atomically before the password is checked, so parallel guesses cannot slip past the limit;
a successful login clears the count."""

from __future__ import annotations

import hashlib

from cashew import clock
from cashew.auth import sessions
from cashew.config import get_settings
from cashew.errors import TooManyAttemptsError

WINDOW_SECONDS = 15 * 60


def _key(email: str) -> str:
    return "LOGIN#" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


def attempt(email: str) -> None:
    """Count an attempt for `email`; TooManyAttemptsError when it is one too many."""
    now = clock.epoch()
    recent = sorted(
        t
        for t in sessions.record_login_attempt(_key(email), now, WINDOW_SECONDS)
        if t > now - WINDOW_SECONDS
    )
    limit = get_settings().login_max_failures
    if len(recent) > limit:
        retry_after = max(1, recent[-limit] + WINDOW_SECONDS - now)
        raise TooManyAttemptsError(
            "too many attempts for this account; try again later",
            headers={"Retry-After": str(retry_after)},
        )


def succeeded(email: str) -> None:
    sessions.clear_login_attempts(_key(email))
