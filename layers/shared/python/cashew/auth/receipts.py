"""Receipts: a log entry signed with the receipt keys (EdDSA, a compact JWS), so anyone can
check it offline with the JWKS alone. Not an access token, and never accepted as one: its
`typ` is not `at+jwt`, its `kid` is not an access-token key, and it has none of the access
claims (`aud`, `sub`, `sid`, `role`, `exp`)."""

from __future__ import annotations

import jwt

from cashew.auth.keys import receipt_key_set
from cashew.identity import Caller
from cashew.ledger import face as ledger
from cashew.ledger.models import Receipt, ReceiptClaims

RECEIPT_TYPE = "cashew-receipt+jwt"


def sign(claims: ReceiptClaims) -> str:
    """The compact JWS of these claims, with the current receipt key."""
    key = receipt_key_set().current
    return jwt.encode(
        claims.model_dump(mode="json"),
        key.private,
        algorithm="EdDSA",
        headers={"kid": key.kid, "typ": RECEIPT_TYPE},
    )


def issue_receipt(caller: Caller, entry_id: str) -> Receipt:
    """The receipt of one of the caller's own entries, and the entry; 404 otherwise."""
    entry, claims = ledger.receipt_claims(caller, entry_id)
    return Receipt(receipt=sign(claims), entry=entry)
