"""The authorizer's decision: a valid access token whose session is still live."""

from __future__ import annotations

from cashew import clock
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
    session = sessions.get(claims.session_id)
    if session is None or not session.live(clock.epoch()) or session.user_id != claims.user_id:
        raise UnauthenticatedError("the session has ended")
    if session.role not in ROLES:
        raise UnauthenticatedError("the session has no valid role")
    return Caller(claims.user_id, claims.session_id, session.role)
