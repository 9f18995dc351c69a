"""The authorizer's decision: a valid access token whose session is still live."""

from __future__ import annotations

from cashew import clock
from cashew.auth import sessions, tokens
from cashew.errors import UnauthenticatedError


def authenticate(authorization: str) -> tokens.AccessClaims:
    """The claims of a `Bearer` access token whose session is still live."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise UnauthenticatedError("a bearer token is required")
    claims = tokens.verify_access_token(token.strip())
    session = sessions.get(claims.session_id)
    if session is None or not session.live(clock.epoch()) or session.user_id != claims.user_id:
        raise UnauthenticatedError("the session has ended")
    return claims
