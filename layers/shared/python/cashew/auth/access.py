"""The authorizer's decision: a valid access token whose session is still live and was made
under the user's current password.

One AWS call per decision: a BatchGetItem of the session (sessions table) and of the user's
current password version (the profile's `password_version` only, accounts table), both
strongly consistent. A password change or reset bumps that version in the transaction that
sets the new password, so every session made under the old one - those the user index had
not listed yet for the revocation included - is refused from the next request on.
"""

from __future__ import annotations

from cashew import clock, dynamo
from cashew.accounts import face as accounts
from cashew.auth import sessions, tokens
from cashew.errors import UnauthenticatedError
from cashew.identity import ROLES, Caller


def authenticate(authorization: str) -> Caller:
    """The caller of a `Bearer` access token whose session is still live. The role is the
    session's, so a role change takes effect on the next request, not at token expiry."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthenticatedError("a bearer token is required")
    claims = tokens.verify_access_token(token.strip())
    session, version = dynamo.batch_get(
        sessions.read(claims.session_id), accounts.password_version_read(claims.user_id)
    )
    if session is None or not session.live(clock.epoch()) or session.user_id != claims.user_id:
        raise UnauthenticatedError("the session has ended")
    if version is not None and session.password_version != version:
        # made under a password since changed or reset, or of a user without a profile
        # (NO_PROFILE, which no session has); None: the profile records no version, as
        # before the first change of password: nothing to compare
        raise UnauthenticatedError("the session has ended")
    if session.role not in ROLES:
        raise UnauthenticatedError("the session has no valid role")
    return Caller(claims.user_id, claims.session_id, session.role)
