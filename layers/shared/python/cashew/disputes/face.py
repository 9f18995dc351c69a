"""What the other modules may read of disputes (republish and the reports); the store stays
disputes' own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cashew.disputes import store

__all__ = ["all_disputes", "count"]


def count(status: str, since: str, until: str) -> int:
    """How many disputes in `status` were opened between `since` and `until`."""
    return store.count(status, since, until)


def all_disputes() -> Iterator[dict[str, Any]]:
    """Every dispute item, for republishing."""
    return store.all_disputes()
