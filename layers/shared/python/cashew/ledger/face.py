"""What the other modules may read of the transaction log's chains (the reports' audit, and
auth's receipts); the store stays the ledger's own."""

from __future__ import annotations

from collections.abc import Iterator

from cashew.ledger import store
from cashew.ledger.receipts import receipt_claims
from cashew.ledger.store import ChainItem, Marker

__all__ = ["DAY_CURSOR", "ChainItem", "Marker", "all_chains", "chain_items", "receipt_claims"]

# The cursor fields of a page of everyone's entries (the CSV export pages with it).
DAY_CURSOR = store.DAY_CURSOR

Chain = tuple[list[ChainItem], list[Marker]]


def chain_items(user_id: str) -> Chain:
    """Every item of the user's chain as stored: the entries in position order, and the
    append records."""
    return store.chain_items(user_id)


def all_chains() -> Iterator[tuple[str, list[ChainItem], list[Marker]]]:
    """Every user's chain, for the audit: one Scan of the whole table, grouped by user."""
    return store.all_chains()
