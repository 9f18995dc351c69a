"""What a receipt says about one of the caller's entries (the signing is auth's, with a key
of its own): the entry as the log holds it, and where the caller's chain stood."""

from __future__ import annotations

from cashew import clock
from cashew.config import get_settings
from cashew.errors import NotFoundError
from cashew.identity import Caller
from cashew.ledger import chain, store
from cashew.ledger.models import ChainHead, Entry, ReceiptClaims
from cashew.observability import logger


class AlteredEntryError(Exception):
    """The stored entry does not hash to its `hash`: it was edited in the table. No receipt is
    signed for it (the audit reports the chain); the caller gets 500 internal_error."""


def receipt_claims(caller: Caller, entry_id: str) -> tuple[Entry, ReceiptClaims]:
    """The caller's own entry and the claims of its receipt; 404 for an unknown id or another
    user's entry (an admin's receipts are of their own entries too: a receipt is the user's)."""
    entry = store.get_entry(entry_id)
    if entry is None or entry.user_id != caller.user_id:
        raise NotFoundError("transaction not found")
    return entry, claims_of(entry)


def claims_of(entry: Entry) -> ReceiptClaims:
    """The claims of the receipt of an entry the log holds (read from it), with where its
    user's chain stands now. An entry that does not hash to its `hash` (edited in the table)
    is AlteredEntryError: no receipt vouches for what the log no longer holds."""
    if chain.entry_hash(entry.model_dump(mode="json", exclude={"hash"})) != entry.hash:
        logger.error(
            "an entry does not match its hash: no receipt signed", extra={"entry_id": entry.id}
        )
        raise AlteredEntryError(entry.id)
    head = store.head(entry.user_id) or entry  # the chain holds the entry: never None
    return ReceiptClaims(
        iss=get_settings().issuer,
        iat=clock.epoch(),
        entry_id=entry.id,
        user_id=entry.user_id,
        payment_id=entry.payment_id,
        type=entry.type,
        direction=entry.direction,
        amount=entry.amount,
        currency=entry.currency,
        status=entry.status,
        occurred_at=entry.occurred_at,
        seq=entry.seq,
        prev_hash=entry.prev_hash,
        hash=entry.hash,
        chain_head=ChainHead(seq=head.seq, hash=head.hash),
    )
