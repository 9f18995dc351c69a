"""Password reset (API.md "Account recovery", property 43 and 45).

A request answers the same whether or not the email has an account, and does the same work
for both: the attempt counted, the credentials read, one conditional PutItem (it stores the
token for an account; for an unknown email its condition fails and nothing is written), and
one email sent (to the account's address, or to SES's mailbox simulator, which delivers to no
one). More than `MAX_REQUESTS` requests an hour for one email are refused, for both alike.

A token is `<user id>.<secret>`: the secret is 256 bits (`secrets.token_urlsafe(32)`); only
the SHA-256 of the whole token is stored, on the user's one `RESET#` item, so a newer token
voids the older. A confirm deletes that item conditionally (still this hash, unexpired) in
the same transaction that replaces the password: of concurrent confirms with one token,
exactly one passes. Every session is then revoked, and the password's version bump (on the
credentials and the profile, where the authorizer reads it with the session) ends at once
any session the user index did not list yet.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from aws_lambda_powertools.metrics import MetricUnit

from cashew import clock, dynamo, ids
from cashew.accounts import face as accounts
from cashew.accounts import passwords
from cashew.auth import sessions
from cashew.auth.recovery import store, tokens
from cashew.auth.recovery.tokens import token_hash
from cashew.config import get_settings
from cashew.errors import ConflictError, InvalidTokenError
from cashew.observability import logger, metrics

MAX_REQUESTS = 5  # an hour, per email


@dataclass(frozen=True, slots=True)
class ResetMail:
    """The reset email to send: to whom, and the link carrying the token (for an unknown
    email: the mailbox simulator, a token valid nowhere, and a user id of no one)."""

    to: str
    link: str
    user_id: str
    known: bool


def _link(token: str) -> str:
    return tokens.link("reset", token)


def _throttle(email: str) -> None:
    """Count a request for `email`; TooManyAttemptsError past `MAX_REQUESTS` an hour."""
    tokens.throttle(
        "RESETREQ#" + hashlib.sha256(email.encode()).hexdigest(),
        MAX_REQUESTS,
        "PasswordResetThrottled",
        "too many password reset requests for this email; try again later",
    )


def request_reset(email: str) -> ResetMail:
    """Issue a reset token for `email` (voiding older ones) and say what to send; the same
    work and the same kind of answer for an email without an account."""
    email = email.strip().lower()
    _throttle(email)
    credentials = accounts.get_credentials(email)
    user_id = credentials.user_id if credentials else ids.new_id("usr")
    token = tokens.new_token(user_id)
    now = clock.epoch()
    record = store.ResetToken(
        user_id=user_id,
        email=email,
        token_hash=token_hash(token),
        created_at=clock.utcnow_str(),
        expires_at=now + get_settings().password_reset_ttl,
    )
    stored = store.put(record, known=credentials is not None)
    metrics.add_metric(name="PasswordResetRequested", unit=MetricUnit.Count, value=1)
    to = email if stored else get_settings().email_decoy_to
    return ResetMail(to, _link(token), user_id, stored)


def confirm_reset(token: str, new_password: str) -> str:
    """Replace the password of the token's user and revoke every session; the user id.
    InvalidTokenError for a token that is unknown, used, voided, expired or malformed."""
    invalid = InvalidTokenError("the token is invalid, used or expired")
    found = tokens.current(token, store.get)
    if found is None:
        metrics.add_metric(name="PasswordResetInvalid", unit=MetricUnit.Count, value=1)
        raise invalid
    presented, record = found
    user_id = record.user_id
    new_hash = passwords.hash_password(new_password)
    _replace_password(record.email, user_id, presented, new_hash, invalid)
    revoked = sessions.revoke_all_except(user_id, "")
    metrics.add_metric(name="PasswordReset", unit=MetricUnit.Count, value=1)
    logger.info("password reset", extra={"user_id": user_id, "sessions_revoked": revoked})
    return user_id


NEW_PASSWORD_ROUNDS = 3  # a password change racing the reset: read and write again


def _replace_password(
    email: str, user_id: str, presented: str, new_hash: str, invalid: InvalidTokenError
) -> None:
    """Use up the token and set the new password with its version bumped, on the
    credentials and on the profile (where the authorizer reads it), in one transaction:
    every session of the old version ends at its next request. A password change that lands
    between the credentials' read and the write is read again; ConflictError if it keeps
    happening, `invalid` if the token was used meanwhile."""
    for _ in range(NEW_PASSWORD_ROUNDS):
        credentials = accounts.get_credentials(email)
        if credentials is None or credentials.user_id != user_id:
            metrics.add_metric(name="PasswordResetInvalid", unit=MetricUnit.Count, value=1)
            raise invalid
        credentials_item, profile_item = accounts.new_password_items(credentials, new_hash)
        try:
            dynamo.Transaction().add("token", store.consume_item(user_id, presented)).add(
                "password", credentials_item
            ).add("profile", profile_item).write()
        except dynamo.TransactionCanceled as exc:
            if exc.failed("token"):  # used meanwhile (a concurrent confirm), or gone
                metrics.add_metric(name="PasswordResetInvalid", unit=MetricUnit.Count, value=1)
                raise invalid from exc
            if exc.failed("password"):  # the password changed since it was read
                continue
            raise
        return
    raise ConflictError("the password is being changed meanwhile; try again")
