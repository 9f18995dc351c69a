"""Access tokens (RFC 8725 / RFC 9068): EdDSA JWTs, algorithm pinned, claims checked."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Literal

import jwt

from cashew import clock, ids
from cashew.auth.keys import key_set
from cashew.config import get_settings
from cashew.errors import UnauthenticatedError

ALGORITHMS = ["EdDSA"]  # pinned: never taken from the token
TOKEN_TYPE = "at+jwt"  # nosec B105 # a JWT typ, not a secret
LEEWAY_SECONDS = 30
REQUIRED_CLAIMS = ["iss", "aud", "sub", "sid", "role", "iat", "exp", "jti"]
NUMERIC_DATE_CLAIMS = ("exp", "iat", "nbf")  # RFC 7519 NumericDate: a JSON number


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    session_id: str
    role: Literal["user", "admin"]
    expires_at: int


def issue_access_token(user_id: str, session_id: str, role: str) -> tuple[str, int]:
    """A signed access token and its lifetime in seconds."""
    settings = get_settings()
    issued = clock.epoch()
    ttl = settings.access_token_ttl
    claims = {
        "iss": settings.issuer,
        "aud": settings.audience,
        "sub": user_id,
        "sid": session_id,
        "role": role,
        "iat": issued,
        "exp": issued + ttl,
        "jti": ids.new_id("evt"),
    }
    key = key_set().current
    token = jwt.encode(
        claims, key.private, algorithm="EdDSA", headers={"kid": key.kid, "typ": TOKEN_TYPE}
    )
    return token, ttl


@functools.cache
def _decoder() -> jwt.PyJWT:
    return jwt.PyJWT(options={"require": REQUIRED_CLAIMS})


def verify_access_token(token: str) -> AccessClaims:
    """The claims of a valid access token; UnauthenticatedError for anything else."""
    settings = get_settings()
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") not in ALGORITHMS or header.get("typ") != TOKEN_TYPE:
            raise UnauthenticatedError("unsupported token")
        key = key_set().all.get(str(header.get("kid")))
        if key is None:
            raise UnauthenticatedError("unknown signing key")
        claims: dict[str, Any] = _decoder().decode(
            token,
            key.public,
            algorithms=ALGORITHMS,
            audience=settings.audience,
            issuer=settings.issuer,
            leeway=LEEWAY_SECONDS,
        )
    except jwt.PyJWTError as exc:
        raise UnauthenticatedError("invalid token") from exc
    if not all(_numeric_date(claims[name]) for name in NUMERIC_DATE_CLAIMS if name in claims):
        # PyJWT takes int() of them: "9999999999" and true would pass its checks
        raise UnauthenticatedError("invalid token")
    role = claims["role"]
    if role not in ("user", "admin") or not str(claims["sub"]).startswith("usr_"):
        raise UnauthenticatedError("invalid token")
    if claims["iat"] > clock.epoch() + LEEWAY_SECONDS:
        raise UnauthenticatedError("token issued in the future")
    return AccessClaims(
        user_id=claims["sub"],
        session_id=str(claims["sid"]),
        role=role,
        expires_at=int(claims["exp"]),
    )


def _numeric_date(value: object) -> bool:
    """A JSON number (not a boolean, not a numeric string), finite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
