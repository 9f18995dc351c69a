"""What the other modules may do with payouts (their store stays payouts' own): the
publisher reads a payout from the stream's image, the audit reads every payout (and a user's),
the email consumer a payout's owner."""

from __future__ import annotations

from collections.abc import Iterator

from cashew.payouts import store
from cashew.payouts.store import StoredPayout, from_image

__all__ = ["StoredPayout", "all_payouts", "from_image", "owner_of", "payouts_of"]


def all_payouts() -> Iterator[StoredPayout]:
    return store.all_payouts()


def payouts_of(user_id: str) -> Iterator[StoredPayout]:
    return store.payouts_of(user_id)


def owner_of(payout_id: str) -> str | None:
    stored = store.get(payout_id)
    return stored.user_id if stored else None
