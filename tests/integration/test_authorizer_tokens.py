"""The authorizer against forged and misused tokens (RFC 8725), and signing key rotation."""

from __future__ import annotations

import base64
import json
import secrets
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from cashew import aws
from cashew.auth import keys
from tests.integration.conftest import authorize


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(user, **changes):
    now = int(time.time())
    claims = {
        "iss": "https://cashew.dev",
        "aud": "cashew-api",
        "sub": user.id,
        "sid": user.session_id,
        "role": "user",
        "iat": now,
        "exp": now + 600,
        "jti": "evt_forged",
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(claims, key=None, headers=None):
    current = keys.key_set().current
    header = {"kid": current.kid, "typ": "at+jwt", **(headers or {})}
    return jwt.encode(claims, key or current.private, algorithm="EdDSA", headers=header)


def _forgeries(user):
    current = keys.key_set().current
    public_raw = current.public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    public_pem = current.public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    valid = _signed(_claims(user))
    head, _, signature = valid.split(".")
    admin_payload = _b64(json.dumps(_claims(user, role="admin")).encode())
    none_header = _b64(json.dumps({"alg": "none", "typ": "at+jwt", "kid": current.kid}).encode())
    hs_header = {"alg": "HS256", "typ": "at+jwt", "kid": current.kid}
    return {
        "alg none": f"{none_header}.{_b64(json.dumps(_claims(user)).encode())}.",
        "HS256 keyed with the public key (raw)": _hs256(_claims(user), public_raw, hs_header),
        "HS256 keyed with the public key (PEM)": _hs256(_claims(user), public_pem, hs_header),
        "tampered payload": f"{head}.{admin_payload}.{signature}",
        "unknown kid": _signed(_claims(user), headers={"kid": "not-a-known-kid"}),
        "signed by a key not in the set": _signed(_claims(user), key=Ed25519PrivateKey.generate()),
        "wrong iss": _signed(_claims(user, iss="https://evil.example")),
        "wrong aud": _signed(_claims(user, aud="another-api")),
        "expired": _signed(_claims(user, iat=int(time.time()) - 3600, exp=int(time.time()) - 1800)),
        "no exp": _signed(_claims(user, exp=None)),
        "no sid": _signed(_claims(user, sid=None)),
        "typ is not at+jwt": _signed(_claims(user), headers={"typ": "JWT"}),
        "refresh token presented as access token": user.refresh_token,
        "another user's sub on this session": _signed(
            _claims(user, sub="usr_01ZZZZZZZZZZZZZZZZZZZZZZZZ")
        ),
        "session that does not exist": _signed(_claims(user, sid="ses_01ZZZZZZZZZZZZZZZZZZZZZZZZ")),
        "empty": "",
    }


def _hs256(claims, secret, header):
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    import hashlib
    import hmac

    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


FORGERIES = [
    "alg none",
    "HS256 keyed with the public key (raw)",
    "HS256 keyed with the public key (PEM)",
    "tampered payload",
    "unknown kid",
    "signed by a key not in the set",
    "wrong iss",
    "wrong aud",
    "expired",
    "no exp",
    "no sid",
    "typ is not at+jwt",
    "refresh token presented as access token",
    "another user's sub on this session",
    "session that does not exist",
    "empty",
]


@pytest.mark.parametrize("forgery", FORGERIES)
def test_the_authorizer_refuses_every_forged_or_misused_token(stack, new_user, forgery):
    # Given a real user, and the control: a well-formed token for their live session passes
    user = new_user()
    assert authorize(stack, _signed(_claims(user)))["principalId"] == user.id
    # When the forgery is presented, Then API Gateway is told "Unauthorized" (a 401)
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(stack, _forgeries(user)[forgery])


def test_rotation_keeps_tokens_of_the_previous_key_valid(stack, new_user):
    # Given a token signed before the rotation
    user = new_user()
    secret_id = stack.env["CASHEW_JWT_SECRET_ID"]
    client = stack.clients("secretsmanager")
    original = client.get_secret_value(SecretId=secret_id)["SecretString"]
    old_kid = jwt.get_unverified_header(user.access_token)["kid"]
    try:
        # When the documented rotation runs: current becomes previous, a new current
        current = json.loads(original)["current"]
        rotated = {"current": secrets.token_urlsafe(48), "previous": current}
        client.put_secret_value(SecretId=secret_id, SecretString=json.dumps(rotated))
        aws.reset()  # every instance picks the new secret up within CASHEW_SECRETS_MAX_AGE
        # Then the JWKS serves both keys, new tokens use the new one, and both verify
        jwks = stack.call("JwksFunction", "auth/jwks.json").body
        kids = {k["kid"] for k in jwks["keys"]}
        new_kid = keys.key_from_seed(rotated["current"]).kid
        assert kids == {old_kid, new_kid} | set(keys.receipt_key_set().all)
        fresh = _signed(_claims(user))
        assert jwt.get_unverified_header(fresh)["kid"] == new_kid
        assert authorize(stack, fresh)["principalId"] == user.id
        assert authorize(stack, user.access_token)["principalId"] == user.id
        # And once the previous key is dropped, its tokens stop verifying
        client.put_secret_value(
            SecretId=secret_id,
            SecretString=json.dumps({"current": rotated["current"], "previous": ""}),
        )
        aws.reset()
        with pytest.raises(Exception, match=r"^Unauthorized$"):
            authorize(stack, user.access_token)
    finally:
        client.put_secret_value(SecretId=secret_id, SecretString=original)
        aws.reset()
