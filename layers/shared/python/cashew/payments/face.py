"""What the other modules may read of payments (disputes, the outbox's outcomes, republish and
the reports); the store stays payments' own. Refunds for a dispute go through
`payments.after_create.refund_for_dispute`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from cashew.payments import store
from cashew.payments.models import RefundResponse
from cashew.payments.store import StoredPayment

__all__ = ["StoredPayment", "all_records", "get", "refund", "stored"]


def get(payment_id: str) -> StoredPayment | None:
    return store.get(payment_id)


def stored(item: dict[str, Any]) -> StoredPayment:
    """A payment as the payments table holds it (an item of `all_records` or of its stream)."""
    return store.stored(item)


def refund(item: dict[str, Any]) -> RefundResponse:
    """A refund as the payments table holds it."""
    return store.refund(item)


def all_records() -> Iterator[dict[str, Any]]:
    """Every payment and refund item, for republishing and the audit."""
    return store.all_records()
