"""Access tokens and signing keys (RFC 8725 / RFC 9068), with an in-memory JWT secret."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cashew import aws
from cashew.auth import keys
from cashew.auth.keys import SigningKey, key_from_seed
from cashew.auth.tokens import AccessClaims, issue_access_token, verify_access_token
from cashew.config import get_settings
from cashew.errors import UnauthenticatedError

SEED_OLD = "seed-old-" + "o" * 40
SEED_NEW = "seed-new-" + "n" * 40
USER = "usr_01JCQ3F6Z4V8T2K9M1N5P7R3S6"
SESSION = "ses_01JCQ3F7A2B4C6D8E0F2G4H6J8"
REQUIRED = ["iss", "aud", "sub", "sid", "role", "iat", "exp", "jti"]  # API.md


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Given a JWT secret held in memory (no Secrets Manager): mutate it to rotate keys."""
    value = {"current": SEED_NEW, "previous": ""}

    def secret_json(secret_id: str, max_age: int) -> dict[str, str]:
        assert secret_id == get_settings().jwt_secret_id
        return dict(value)

    monkeypatch.setattr(aws, "secret_json", secret_json)
    return value


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def compact(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    head = b64(json.dumps(header).encode())
    body = b64(json.dumps(claims).encode())
    return f"{head}.{body}.{b64(signature)}"


def hmac_token(header: dict[str, Any], claims: dict[str, Any], secret: bytes) -> str:
    unsigned = compact(header, claims).rsplit(".", 1)[0]
    signature = hmac.new(secret, unsigned.encode(), hashlib.sha256).digest()
    return f"{unsigned}.{b64(signature)}"


@dataclass
class Forge:
    """What an attacker (or a careless issuer) could build, next to a valid token."""

    key: SigningKey
    now: int = field(default_factory=lambda: int(time.time()))

    def claims(self, **overrides: Any) -> dict[str, Any]:
        claims: dict[str, Any] = {
            "iss": "https://cashew.dev",
            "aud": "cashew-api",
            "sub": USER,
            "sid": SESSION,
            "role": "user",
            "iat": self.now,
            "exp": self.now + 900,
            "jti": "evt_01JCQ3F7A2B4C6D8E0F2G4H6J8",
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def header(self, **overrides: Any) -> dict[str, Any]:
        header: dict[str, Any] = {"alg": "EdDSA", "typ": "at+jwt", "kid": self.key.kid}
        header.update(overrides)
        return {k: v for k, v in header.items() if v is not None}

    def sign(self, claims: dict[str, Any] | None = None, *, key: Any = None, **header: Any) -> str:
        headers = self.header(**header)
        alg = headers.pop("alg")
        return jwt.encode(
            claims if claims is not None else self.claims(),
            key if key is not None else self.key.private,
            algorithm=alg,
            headers=headers,
        )


@pytest.fixture
def forge(secret: dict[str, str]) -> Forge:
    return Forge(key=key_from_seed(secret["current"]))


# --- valid tokens ---------------------------------------------------------------------------


def test_an_issued_token_verifies(forge: Forge) -> None:
    # When a token is issued for a user and verified
    token, ttl = issue_access_token(USER, SESSION, "admin")
    claims = verify_access_token(token)
    # Then it names the user, the session and the role, and lives at most 15 minutes
    assert (claims.user_id, claims.session_id, claims.role) == (USER, SESSION, "admin")
    assert 60 <= ttl <= 900
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "typ": "at+jwt", "kid": forge.key.kid}
    payload = jwt.decode(token, options={"verify_signature": False})
    assert set(REQUIRED) <= set(payload)
    assert payload["exp"] - payload["iat"] == ttl
    assert (
        payload["jti"]
        != jwt.decode(
            issue_access_token(USER, SESSION, "admin")[0], options={"verify_signature": False}
        )["jti"]
    )


def test_the_token_lifetime_follows_the_setting(
    forge: Forge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CASHEW_ACCESS_TOKEN_TTL", "300")
    get_settings.cache_clear()
    token, ttl = issue_access_token(USER, SESSION, "user")
    payload = jwt.decode(token, options={"verify_signature": False})
    assert ttl == 300 == payload["exp"] - payload["iat"]


def test_a_token_signed_by_hand_with_the_current_key_verifies(forge: Forge) -> None:
    assert verify_access_token(forge.sign()) == AccessClaims(
        user_id=USER, session_id=SESSION, role="user", expires_at=forge.now + 900
    )


def test_a_token_expired_within_the_leeway_still_verifies(forge: Forge) -> None:
    token = forge.sign(forge.claims(iat=forge.now - 900, exp=forge.now - 10))
    assert verify_access_token(token).user_id == USER


def test_numeric_dates_with_a_fraction_verify(forge: Forge) -> None:
    # RFC 7519: a NumericDate is a JSON number, not only an integer
    token = forge.sign(
        forge.claims(iat=forge.now + 0.5, exp=forge.now + 900.5, nbf=forge.now - 1.5)
    )
    claims = verify_access_token(token)
    assert (claims.user_id, claims.expires_at) == (USER, forge.now + 900)


def test_a_list_audience_containing_ours_verifies(forge: Forge) -> None:
    token = forge.sign(forge.claims(aud=["other", "cashew-api"]))
    assert verify_access_token(token).user_id == USER


# --- forged and invalid tokens --------------------------------------------------------------


def _tampered(f: Forge) -> str:
    head, _, signature = f.sign().split(".")
    body = b64(json.dumps(f.claims(role="admin")).encode())
    return f"{head}.{body}.{signature}"


def _tampered_sub(f: Forge) -> str:
    head, _, signature = f.sign().split(".")
    body = b64(json.dumps(f.claims(sub="usr_01JCQ3H1J3K5M7N9P1Q3R5S7T9")).encode())
    return f"{head}.{body}.{signature}"


def _header_swapped(f: Forge) -> str:
    _, body, signature = f.sign().split(".")
    head = b64(json.dumps(f.header(kid=f.key.kid, typ="at+jwt", extra="x")).encode())
    return f"{head}.{body}.{signature}"


def _without(claim: str, f: Forge) -> str:
    return f.sign(f.claims(**{claim: None}))


def _public_raw(f: Forge) -> bytes:
    return f.key.public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _public_pem(f: Forge) -> bytes:
    return f.key.public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def _foreign_ed25519(f: Forge, kid: str | None) -> str:
    attacker = Ed25519PrivateKey.generate()
    return f.sign(key=attacker, kid=kid)


FORGERIES: dict[str, Callable[[Forge], str]] = {
    "alg-none": lambda f: compact(f.header(alg="none"), f.claims()),
    "alg-None": lambda f: compact(f.header(alg="None"), f.claims()),
    "alg-none-with-signature": lambda f: f"{compact(f.header(alg='none'), f.claims())}c2ln",
    "alg-missing": lambda f: compact(f.header(alg=None), f.claims(), b"x" * 64),
    "hs256-with-raw-public-key": lambda f: hmac_token(
        f.header(alg="HS256"), f.claims(), _public_raw(f)
    ),
    "hs256-with-pem-public-key": lambda f: hmac_token(
        f.header(alg="HS256"), f.claims(), _public_pem(f)
    ),
    "hs256-with-jwk-x": lambda f: hmac_token(
        f.header(alg="HS256"), f.claims(), f.key.jwk()["x"].encode()
    ),
    "es256-foreign-key-our-kid": lambda f: f.sign(
        key=generate_private_key(SECP256R1()), alg="ES256"
    ),
    "eddsa-foreign-key-our-kid": lambda f: _foreign_ed25519(f, f.key.kid),
    "eddsa-foreign-key-own-kid": lambda f: _foreign_ed25519(f, "attacker-kid"),
    "tampered-payload-role": _tampered,
    "tampered-payload-sub": _tampered_sub,
    "tampered-header": _header_swapped,
    "signature-stripped": lambda f: f.sign().rsplit(".", 1)[0] + ".",
    "signature-truncated": lambda f: f.sign()[:-4],
    "unknown-kid": lambda f: f.sign(kid="no-such-kid"),
    "kid-missing": lambda f: f.sign(kid=None),
    "kid-not-in-set": lambda f: f.sign(
        key=key_from_seed("x" * 40).private, kid=key_from_seed("x" * 40).kid
    ),
    "jwk-header-injection": lambda f: f.sign(
        key=(attacker := Ed25519PrivateKey.generate()),
        kid="injected",
        jwk={
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64(attacker.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)),
        },
    ),
    "jku-header": lambda f: f.sign(kid="remote", jku="https://attacker.invalid/jwks.json"),
    "wrong-iss": lambda f: f.sign(f.claims(iss="https://evil.example")),
    "wrong-aud": lambda f: f.sign(f.claims(aud="another-api")),
    "aud-list-without-ours": lambda f: f.sign(f.claims(aud=["a", "b"])),
    "expired-beyond-leeway": lambda f: f.sign(f.claims(iat=f.now - 1000, exp=f.now - 31)),
    "expired-long-ago": lambda f: f.sign(f.claims(iat=f.now - 90_000, exp=f.now - 86_400)),
    **{f"missing-{claim}": functools.partial(_without, claim) for claim in REQUIRED},
    "typ-JWT": lambda f: f.sign(typ="JWT"),
    "typ-missing": lambda f: f.sign(typ=None),
    "typ-refresh": lambda f: f.sign(typ="rt+jwt"),
    "sub-session-id": lambda f: f.sign(f.claims(sub=SESSION)),
    "sub-not-prefixed": lambda f: f.sign(f.claims(sub="01JCQ3F6Z4V8T2K9M1N5P7R3S6")),
    "sub-uppercase-prefix": lambda f: f.sign(f.claims(sub="USR_01JCQ3F6Z4V8T2K9M1N5P7R3S6")),
    "role-superuser": lambda f: f.sign(f.claims(role="superuser")),
    "role-Admin": lambda f: f.sign(f.claims(role="Admin")),
    "role-list": lambda f: f.sign(f.claims(role=["admin"])),
    "iat-in-the-future": lambda f: f.sign(f.claims(iat=f.now + 3600, exp=f.now + 4500)),
    "iat-beyond-leeway": lambda f: f.sign(f.claims(iat=f.now + 120, exp=f.now + 1000)),
    "nbf-in-the-future": lambda f: f.sign(f.claims(nbf=f.now + 3600)),
    # NumericDate claims are JSON numbers; PyJWT takes int() of them and would let these by
    "exp-numeric-string": lambda f: f.sign(f.claims(exp=str(f.now + 900))),
    "iat-numeric-string": lambda f: f.sign(f.claims(iat=str(f.now))),
    "iat-true": lambda f: f.sign(f.claims(iat=True)),
    "iat-false": lambda f: f.sign(f.claims(iat=False)),
    "exp-true": lambda f: f.sign(f.claims(exp=True)),
    "nbf-numeric-string": lambda f: f.sign(f.claims(nbf=str(f.now - 60))),
    "nbf-false": lambda f: f.sign(f.claims(nbf=False)),
    "refresh-token": lambda f: "rt_ses_x.y",
    "refresh-token-realistic": lambda f: f"rt_{SESSION}.{b64(b'r' * 32)}",
    "empty": lambda f: "",
    "garbage": lambda f: "garbage",
    "three-dots": lambda f: "a.b.c",
    "only-dots": lambda f: "...",
    "bearer-prefix-left-in": lambda f: "Bearer " + f.sign(),
    "header-not-an-object": lambda f: f"{b64(b'[1]')}.{b64(b'{}')}.{b64(b'x')}",
    "payload-not-json": lambda f: f"{b64(json.dumps(f.header()).encode())}.{b64(b'nope')}.",
    "unicode": lambda f: "\u00e9\u00e9.\u00e9.\u00e9",
}


@pytest.mark.parametrize("build", FORGERIES.values(), ids=FORGERIES.keys())
def test_forged_or_invalid_tokens_are_unauthenticated(
    forge: Forge, build: Callable[[Forge], str]
) -> None:
    # Given a token that must not be accepted
    token = build(forge)
    # When it is verified, then the only possible outcome is UnauthenticatedError
    with pytest.raises(UnauthenticatedError) as caught:
        verify_access_token(token)
    assert (caught.value.status, caught.value.code) == (401, "unauthenticated")


def test_the_control_token_of_the_forgery_table_is_valid(forge: Forge) -> None:
    """The forgeries above differ from this token in one respect each; it must verify, or the
    table would pass for the wrong reason."""
    assert verify_access_token(forge.sign()).user_id == USER


# --- key rotation ---------------------------------------------------------------------------


def test_a_token_of_the_previous_key_verifies_until_that_key_is_dropped(
    secret: dict[str, str],
) -> None:
    # Given a token signed before a rotation
    secret.update(current=SEED_OLD, previous="")
    old_token, _ = issue_access_token(USER, SESSION, "user")
    old_kid = key_from_seed(SEED_OLD).kid
    assert jwt.get_unverified_header(old_token)["kid"] == old_kid

    # When the key rotates (the old seed kept as previous)
    secret.update(current=SEED_NEW, previous=SEED_OLD)
    # Then the old token still verifies, and new tokens use the new key
    assert verify_access_token(old_token).user_id == USER
    new_token, _ = issue_access_token(USER, SESSION, "user")
    assert jwt.get_unverified_header(new_token)["kid"] == key_from_seed(SEED_NEW).kid
    assert verify_access_token(new_token).user_id == USER

    # When the previous seed is removed
    secret.update(current=SEED_NEW, previous="")
    # Then the old token is rejected and the new one still verifies
    with pytest.raises(UnauthenticatedError):
        verify_access_token(old_token)
    assert verify_access_token(new_token).user_id == USER


def test_the_key_set_publishes_both_keys_without_private_material(
    secret: dict[str, str],
) -> None:
    secret.update(current=SEED_NEW, previous=SEED_OLD)
    jwks = keys.key_set().jwks()
    kids = {jwk["kid"] for jwk in jwks["keys"]}
    assert kids == {key_from_seed(SEED_NEW).kid, key_from_seed(SEED_OLD).kid}
    for jwk in jwks["keys"]:
        assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == (
            "OKP",
            "Ed25519",
            "EdDSA",
            "sig",
        )
        assert "d" not in jwk
        assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use"}
        assert len(base64.urlsafe_b64decode(jwk["x"] + "==")) == 32
    # and the published public key really verifies what the matching private key signs
    current = keys.key_set().current
    token = jwt.encode({"x": 1}, current.private, algorithm="EdDSA")
    published = next(j for j in jwks["keys"] if j["kid"] == current.kid)
    public = jwt.PyJWK(published).key
    assert jwt.decode(token, public, algorithms=["EdDSA"]) == {"x": 1}


def test_keys_are_derived_deterministically_from_their_seed() -> None:
    assert key_from_seed(SEED_NEW).kid == key_from_seed(SEED_NEW).kid
    assert key_from_seed(SEED_NEW).jwk() == key_from_seed(SEED_NEW).jwk()
    assert key_from_seed(SEED_NEW).kid != key_from_seed(SEED_OLD).kid


@pytest.mark.parametrize("seed", ["", "short", "x" * 31])
def test_a_current_seed_shorter_than_32_characters_is_refused(
    secret: dict[str, str], seed: str
) -> None:
    secret.update(current=seed)
    with pytest.raises(RuntimeError):
        keys.key_set()
