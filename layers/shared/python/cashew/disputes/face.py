"""What the other modules may read of disputes (the outcome publisher, republish and the
reports); the store stays disputes' own."""

from __future__ import annotations

from collections.abc import Iterator

from cashew.disputes import store
from cashew.disputes.store import StoredDispute, Unreadable

__all__ = ["StoredDispute", "Unreadable", "changed_since", "count", "stored"]


def count(status: str, since: str, until: str) -> int:
    """How many disputes in `status` were opened between `since` and `until`."""
    return store.count(status, since, until)


def changed_since(since: str) -> Iterator[StoredDispute]:
    """Every dispute whose last change is at or after `since`, for republishing; one that
    cannot be read raises `Unreadable`."""
    return store.changed_since(since)


def stored(pk: str) -> StoredDispute | None:
    """The dispute stored under `pk` (strongly consistent); None if no dispute is."""
    return store.stored(pk)
