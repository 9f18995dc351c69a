"""Endpoint secrets at rest: encrypted with the webhooks' own KMS key (WebhookSecretKey), the
encryption context bound to the endpoint, so a ciphertext cannot be replayed onto another
endpoint and the key's policy allows no other use."""

from __future__ import annotations

from cashew import aws
from cashew.webhooks import settings


def _context(endpoint_id: str) -> dict[str, str]:
    return {"webhook_endpoint_id": endpoint_id}


def seal(secret: str, endpoint_id: str) -> bytes:
    response = aws.kms().encrypt(
        KeyId=settings.get().key_id,
        Plaintext=secret.encode(),
        EncryptionContext=_context(endpoint_id),
    )
    return bytes(response["CiphertextBlob"])


def unseal(ciphertext: bytes, endpoint_id: str) -> str:
    response = aws.kms().decrypt(
        CiphertextBlob=ciphertext,
        EncryptionContext=_context(endpoint_id),
        KeyId=settings.get().key_id,
    )
    return bytes(response["Plaintext"]).decode()
