"""Signatures of webhook deliveries: `Cashew-Signature: t=<unix>,v1=<hex>[,v1=<hex>...]`, the
HMAC-SHA256 of `t.body` over the exact bytes sent, one `v1` per live secret of the endpoint
(two while a rotated secret overlaps its successor)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence

SECRET_PREFIX = "whsec_"  # nosec B105 # a prefix, not a secret
SECRET_BYTES = 32


def new_secret() -> str:
    """`whsec_` and 32 random bytes (base64url, 43 characters)."""
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def header(live_secrets: Sequence[str], timestamp: int, body: bytes) -> str:
    parts = [f"t={timestamp}"] + [f"v1={signature(s, timestamp, body)}" for s in live_secrets]
    return ",".join(parts)


def verify(secret: str, value: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """What a receiver does: some `v1` of the header is the HMAC of `t.body` with its secret,
    and `t` is recent (the README shows the same in a few lines)."""
    fields = [part.split("=", 1) for part in value.split(",") if "=" in part]
    stamps = [v for k, v in fields if k == "t"]
    if len(stamps) != 1 or not stamps[0].isdigit() or abs(now - int(stamps[0])) > tolerance:
        return False
    expected = signature(secret, int(stamps[0]), body)
    return any(hmac.compare_digest(expected, v) for k, v in fields if k == "v1")
