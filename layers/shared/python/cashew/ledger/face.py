"""What the other modules may read of the transaction log's chains (the reports' audit, auth's
receipts, the notifications' receipt emails); the store stays the ledger's own."""

from __future__ import annotations

from collections.abc import Iterator

from cashew.ledger import service, store, totals
from cashew.ledger.models import Entry, Outcome
from cashew.ledger.receipts import claims_of, receipt_claims
from cashew.ledger.store import ChainItem, Marker
from cashew.ledger.totals import Totals

__all__ = [
    "DAY_CURSOR",
    "ChainItem",
    "Marker",
    "Totals",
    "all_chains",
    "chain_items",
    "claims_of",
    "entry_for_outcome",
    "first_counted_day",
    "parties",
    "receipt_claims",
    "totals_of_days",
]

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


def owners_page(
    segment: int, segments: int, start: str | None, limit: int
) -> tuple[list[str], str | None]:
    """The owners of the chains on one page of the log's sweep (`store.owners_page`)."""
    return store.owners_page(segment, segments, start, limit)


def parties(outcome: Outcome) -> set[str]:
    """The users the log gives an entry of this outcome (once it is appended)."""
    return {user_id for user_id, _, _ in service.affected(outcome)}


def entry_for_outcome(user_id: str, outcome_id: str) -> Entry | None:
    """The user's entry of the outcome, or None while it is not in their chain: two
    consistent GetItems (the append record, then the entry)."""
    return store.entry_for_outcome(user_id, outcome_id)


def first_counted_day() -> str | None:
    """The first UTC day whose outcomes the running totals all hold ("0000-00-00": every
    day); None before any outcome was counted."""
    return totals.first_counted_day()


def totals_of_days(days: list[str], into: Totals) -> None:
    """Add what the outcomes of each of `days` (whole UTC days) add up to."""
    totals.of_days(days, into)
