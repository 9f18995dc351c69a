"""Signing keys: Ed25519, derived from the seeds in a secret. Two sets, each from a secret
of its own: the access-token keys (the JWT secret) and the receipt keys (the receipt
secret), so a receipt can never pass for an access token, nor a leaked key of one sign the
other.

Each secret holds `{"current": <seed>, "previous": <seed or "">}`. A key's `kid` is derived
from its public key, so what was signed before a rotation keeps verifying while the previous
seed is kept. Keys are only ever looked up in these sets, never fetched from a token.

Both sets are published in one JWKS, so a receipt key's `kid` starts with
`RECEIPT_KID_PREFIX` and an access-token key's never does: a verifier holding only the JWKS
accepts a receipt signed by a receipt key, never one signed by an access-token key (which
more functions hold).
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


# A derived kid is base64url, which has no ".": no access-token kid can start with this.
RECEIPT_KID_PREFIX = "receipt."


def key_from_seed(seed: str, kid_prefix: str = "") -> SigningKey:
    private = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(seed.encode()).digest())
    public = private.public_key()
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    kid = kid_prefix + _b64(hashlib.sha256(raw).digest())[:16]
    return SigningKey(kid=kid, private=private, public=public)


# secret id -> (its seeds, their keys): key derivation is memoised per secret.
_cache: dict[str, tuple[tuple[str, str], KeySet]] = {}


def key_set() -> KeySet:
    """The access-token keys: current and previous (the secret is cached)."""
    return _key_set(get_settings().jwt_secret_id, "the JWT secret", "")


def receipt_key_set() -> KeySet:
    """The receipt keys: current and previous, from the receipt secret (cached likewise)."""
    return _key_set(get_settings().receipt_secret_id, "the receipt secret", RECEIPT_KID_PREFIX)


def published_jwks() -> dict[str, Any]:
    """The JWKS of `/.well-known/jwks.json`: the access-token keys, then the receipt keys."""
    return {"keys": key_set().jwks()["keys"] + receipt_key_set().jwks()["keys"]}


def _key_set(secret_id: str, what: str, kid_prefix: str) -> KeySet:
    secret = aws.secret_json(secret_id, get_settings().secrets_max_age)
    seeds = (str(secret.get("current", "")), str(secret.get("previous", "")))
    cached = _cache.get(secret_id)
    if cached is None or cached[0] != seeds:
        if len(seeds[0]) < 32:
            raise RuntimeError(f"{what} has no current seed of at least 32 characters")
        current = key_from_seed(seeds[0], kid_prefix)
        keys = {current.kid: current}
        if seeds[1]:
            previous = key_from_seed(seeds[1], kid_prefix)
            keys[previous.kid] = previous
        cached = _cache[secret_id] = (seeds, KeySet(current=current, all=keys))
    return cached[1]
