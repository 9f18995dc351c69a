"""Token signing keys: Ed25519, derived from the seeds in the JWT secret.

The secret holds `{"current": <seed>, "previous": <seed or "">}`. A key's `kid` is derived
from its public key, so tokens signed before a rotation keep verifying while the previous
seed is kept. Keys are only ever looked up in this set, never fetched from a token.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cashew import aws
from cashew.config import get_settings


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str
    private: Ed25519PrivateKey
    public: Ed25519PublicKey

    def jwk(self) -> dict[str, str]:
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _b64(self.public.public_bytes(Encoding.Raw, PublicFormat.Raw)),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        }


@dataclass(frozen=True, slots=True)
class KeySet:
    current: SigningKey
    all: dict[str, SigningKey]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.jwk() for key in self.all.values()]}


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def key_from_seed(seed: str) -> SigningKey:
    private = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest())
    public = private.public_key()
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return SigningKey(kid=_b64(hashlib.sha256(raw).digest())[:16], private=private, public=public)


_cache: dict[tuple[str, str], KeySet] = {}


def key_set() -> KeySet:
    """The current and previous keys (the secret is cached; key derivation is memoised)."""
    settings = get_settings()
    secret = aws.secret_json(settings.jwt_secret_id, settings.secrets_max_age)
    seeds = (str(secret.get("current", "")), str(secret.get("previous", "")))
    if seeds not in _cache:
        if len(seeds[0]) < 32:
            raise RuntimeError("the JWT secret has no current seed of at least 32 characters")
        current = key_from_seed(seeds[0])
        keys = {current.kid: current}
        if seeds[1]:
            previous = key_from_seed(seeds[1])
            keys[previous.kid] = previous
        _cache.clear()
        _cache[seeds] = KeySet(current=current, all=keys)
    return _cache[seeds]
