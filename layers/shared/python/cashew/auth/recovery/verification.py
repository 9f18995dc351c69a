"""Email verification (API.md "Users and accounts": `email_verified`, the verification link,
its resend, and the gate of money-moving POSTs).

The design is the password reset's (cashew.auth.recovery.service): a token is
`<user id>.<secret>`, the secret 256 bits (`secrets.token_urlsafe(32)`); only the SHA-256 of
the whole token is stored, on the user's one `VERIFY#` item with the address it was sent to,
so a newer token voids the older. A verify deletes that item conditionally (still this hash,
unexpired) in the same transaction that marks the profile verified (still this address): of
concurrent verifies with one token, exactly one passes. The token goes from the function to
SES and nowhere else (no queue, bus, table or log).

Decisions the contract leaves open:
- a resend for a user already verified answers 202 as any resend, and issues and sends
  nothing (a verified address has nothing to confirm; the answer says nothing new: the
  caller can read `email_verified`);
- a valid token of a user already verified (possible only when a resend raced a verify) is
  consumed and answers 204: the state it asks for holds, and the token is used up.
"""

from __future__ import annotations

from dataclasses import dataclass

from aws_lambda_powertools.metrics import MetricUnit

from cashew import clock, dynamo
from cashew.accounts import face as accounts
from cashew.auth.recovery import store, tokens
from cashew.auth.recovery.tokens import token_hash
from cashew.errors import InvalidTokenError, NotFoundError
from cashew.observability import logger, metrics

TTL_SECONDS = 24 * 3600
MAX_RESENDS = 5  # an hour, per user (as the reset requests, per email)


@dataclass(frozen=True, slots=True)
class VerificationMail:
    """The verification email to send: to whom, their name, and the link with the token."""

    to: str
    name: str
    link: str


def _link(token: str) -> str:
    return tokens.link("verify-email", token)


def issue(user_id: str, email: str, name: str) -> VerificationMail:
    """A new verification token for the user's `email` (voiding any older one): one PutItem."""
    token = tokens.new_token(user_id)
    store.put_verification(
        store.VerifyToken(
            user_id=user_id,
            email=email,
            token_hash=token_hash(token),
            created_at=clock.utcnow_str(),
            expires_at=clock.epoch() + TTL_SECONDS,
        )
    )
    metrics.add_metric(name="EmailVerificationIssued", unit=MetricUnit.Count, value=1)
    return VerificationMail(email, name, _link(token))


def _throttle(user_id: str) -> None:
    """Count a resend for the user; TooManyAttemptsError past `MAX_RESENDS` an hour."""
    tokens.throttle(
        f"VERIFYREQ#{user_id}", MAX_RESENDS,
        "EmailVerificationThrottled", "too many verification emails asked for; try again later",
    )  # fmt: skip


def resend(user_id: str) -> VerificationMail | None:
    """A new token for the caller (voiding older ones) and the email to send; None for a
    user whose email is verified already (nothing issued). TooManyAttemptsError past the
    hourly limit, counted whether or not the email is verified."""
    _throttle(user_id)
    profile = accounts.get_profile(user_id)
    if profile is None:
        raise NotFoundError("user not found")
    if profile.email_verified:
        metrics.add_metric(name="EmailVerificationNotNeeded", unit=MetricUnit.Count, value=1)
        return None
    return issue(profile.id, profile.email, profile.name)


def verify(token: str) -> str:
    """Mark the token's user's email verified and use the token up; the user id.
    InvalidTokenError for a token that is unknown, used, voided, expired or malformed, or
    whose address is no longer the user's."""
    invalid = InvalidTokenError("the token is invalid, used or expired")
    found = tokens.current(token, store.get_verification)
    if found is None:
        metrics.add_metric(name="EmailVerificationInvalid", unit=MetricUnit.Count, value=1)
        raise invalid
    presented, record = found
    user_id = record.user_id
    try:
        dynamo.Transaction().add("token", store.consume_verification_item(user_id, presented)).add(
            "profile", accounts.email_verified_item(user_id, record.email)
        ).write()
    except dynamo.TransactionCanceled as exc:
        if exc.failed("token", "profile"):  # used meanwhile, or the address is not theirs
            metrics.add_metric(name="EmailVerificationInvalid", unit=MetricUnit.Count, value=1)
            raise invalid from exc
        raise
    metrics.add_metric(name="EmailVerified", unit=MetricUnit.Count, value=1)
    logger.info("email verified", extra={"user_id": user_id})
    return user_id
