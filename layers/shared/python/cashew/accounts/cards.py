"""Card data: brand, expiry, keyed fingerprint, and envelope encryption of gateway tokens.

Only the gateway's token is kept, encrypted under a KMS data key whose encryption context
binds it to its owner and payment method. The number and the CVC never leave this request.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cashew import aws, clock
from cashew.config import get_settings
from cashew.gateways.base import card_brand


@dataclass(frozen=True, slots=True)
class SealedToken:
    ciphertext: bytes
    nonce: bytes
    data_key: bytes  # the KMS-encrypted data key


brand = card_brand  # the network a number belongs to


def is_expired(exp_month: int, exp_year: int) -> bool:
    today = clock.now()
    return (exp_year, exp_month) < (today.year, today.month)


def _fingerprint_key() -> bytes:
    settings = get_settings()
    key = aws.secret_json(settings.fingerprint_secret_id, settings.secrets_max_age)["key"]
    return str(key).encode()


def fingerprint(number: str) -> str:
    """Same card, same fingerprint; not reversible without the key."""
    return hmac.new(_fingerprint_key(), number.encode(), hashlib.sha256).hexdigest()[:32]


def token_fingerprint(gateway: str, gateway_fingerprint: str) -> str:
    """The fingerprint of a card added by gateway token, from the gateway's own fingerprint of
    it (Cashew never sees the number): same card through the same gateway, same fingerprint;
    keyed as `fingerprint`, in a domain of its own (never equal to a number's)."""
    message = f"gateway:{gateway}:{gateway_fingerprint}".encode()
    return hmac.new(_fingerprint_key(), message, hashlib.sha256).hexdigest()[:32]


def token_digest(token: str) -> str:
    """What marks a gateway token as attached (`GATEWAY_TOKEN#<digest>`): its SHA-256. Tokens
    carry ≥ 96 random bits, so the digest reveals nothing; the token itself is only stored
    sealed."""
    return hashlib.sha256(token.encode()).hexdigest()


def _context(user_id: str, method_id: str) -> dict[str, str]:
    return {"user_id": user_id, "payment_method_id": method_id}


def seal(token: str, user_id: str, method_id: str) -> SealedToken:
    response = aws.kms().generate_data_key(
        KeyId=get_settings().card_key_id,
        KeySpec="AES_256",
        EncryptionContext=_context(user_id, method_id),
    )
    nonce = os.urandom(12)
    aad = f"{user_id}/{method_id}".encode()
    ciphertext = AESGCM(response["Plaintext"]).encrypt(nonce, token.encode(), aad)
    return SealedToken(ciphertext=ciphertext, nonce=nonce, data_key=response["CiphertextBlob"])


def unseal(sealed: SealedToken, user_id: str, method_id: str) -> str:
    response = aws.kms().decrypt(
        CiphertextBlob=sealed.data_key,
        EncryptionContext=_context(user_id, method_id),
        KeyId=get_settings().card_key_id,
    )
    aad = f"{user_id}/{method_id}".encode()
    return AESGCM(response["Plaintext"]).decrypt(sealed.nonce, sealed.ciphertext, aad).decode()
