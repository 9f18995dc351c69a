"""What the other modules may read of the transaction log's chains (the reports' audit); the
store stays the ledger's own."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from cashew.ledger import store
from cashew.ledger.chain import Marker
from cashew.ledger.models import Entry

__all__ = ["DAY_CURSOR", "all_chains", "chain_items", "entry"]

# The cursor fields of a page of everyone's entries (the CSV export pages with it).
DAY_CURSOR = store.DAY_CURSOR

Chain = tuple[list[tuple[int, dict[str, Any]]], list[Marker]]


def chain_items(user_id: str) -> Chain:
    """Every item of the user's chain as stored: the entries as (position, fields) in position
    order, and the append records."""
    return store.chain_items(user_id)


def all_chains() -> Iterator[tuple[str, list[tuple[int, dict[str, Any]]], list[Marker]]]:
    """Every user's chain, for the audit: one Scan of the whole table, grouped by user."""
    return store.all_chains()


def entry(item: Mapping[str, Any]) -> Entry:
    """An entry as the log holds it."""
    return store.entry(item)
