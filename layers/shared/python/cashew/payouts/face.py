"""What the other modules may do with payouts (their store stays payouts' own): the
publisher reads a payout from the stream's image, the audit reads every payout (and a user's),
the email consumer a payout's owner, the export a page of the caller's payouts;
reconciliation settles the pending ones (`SWEEPS`)."""

from __future__ import annotations

from collections.abc import Iterator

from cashew.payments import reconcile
from cashew.payouts import settle, store
from cashew.payouts.models import PayoutList
from cashew.payouts.store import StoredPayout, from_image

__all__ = [
    "SWEEPS",
    "StoredPayout",
    "all_payouts",
    "from_image",
    "owner_of",
    "payouts_of",
    "payouts_page",
]


def _settled_by_asking(payout_id: str) -> bool:
    return settle.settle_pending(payout_id) in {"paid", "failed"}


SWEEPS = {store.OPEN_STATUS: reconcile.Sweep(lambda s: s.reconcile_after, _settled_by_asking)}
"""Reconciliation's row for payouts: a payout `pending` after CASHEW_RECONCILE_AFTER is asked
of the gateway under its key and settled by the webhook's conditional write."""


def all_payouts() -> Iterator[StoredPayout]:
    return store.all_payouts()


def owners_page(
    segment: int, segments: int, start: str | None, limit: int
) -> tuple[list[str], str | None]:
    """The owners of the payouts on one page of the audit's sweep (`store.owners_page`)."""
    return store.owners_page(segment, segments, start, limit)


def payouts_of(user_id: str) -> Iterator[StoredPayout]:
    return store.payouts_of(user_id)


def owner_of(payout_id: str) -> str | None:
    stored = store.get(payout_id)
    return stored.user_id if stored else None


def payouts_page(user_id: str, limit: int, cursor: str | None) -> PayoutList:
    """A page of the user's payouts as GET /v1/payouts shows them (for the export)."""
    return store.list_payouts(user_id, limit, cursor)
