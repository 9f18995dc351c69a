"""What the other modules may read of payments (disputes, the outbox's outcomes, republish and
the reports), as records; the store stays payments' own. Refunds for a dispute go through
`payments.after_create.refund_for_dispute`."""

from __future__ import annotations

from collections.abc import Iterator

from cashew.payments import store
from cashew.payments.models import PaymentResponse, RefundResponse
from cashew.payments.store import Record, StoredPayment, StoredRefund, Unreadable, from_image

__all__ = [
    "Record",
    "StoredPayment",
    "StoredRefund",
    "Unreadable",
    "all_records",
    "changed_at",
    "from_image",
    "get",
    "payments_page",
    "read",
    "records_of",
    "refunds_page",
]


def get(payment_id: str) -> StoredPayment | None:
    return store.get(payment_id)


def read(pk: str) -> Record | Unreadable | None:
    """The payment or refund stored under `pk`, read again (strongly consistent)."""
    return store.read(pk)


def all_records() -> Iterator[Record | Unreadable]:
    """Every payment and refund, for republishing and the audit."""
    return store.all_records()


def records_page(
    segment: int, segments: int, start: str | None, limit: int
) -> tuple[list[Record | Unreadable], str | None]:
    """One page of the payments table's sweep (`store.records_page`)."""
    return store.records_page(segment, segments, start, limit)


def records_of(user_id: str) -> Iterator[Record | Unreadable]:
    """The user's payments (as payer or payee) and their refunds, for the audit's re-checks."""
    return store.records_of(user_id)


def changed_at(record: Record) -> str:
    """When the record last changed, as far as it says (see `store.changed_at`)."""
    return store.changed_at(record)


def payments_page(
    user_id: str, role: store.Role, limit: int, cursor: str | None
) -> tuple[list[PaymentResponse], str | None]:
    """A page of the user's payments as payer (or payee), newest first, as GET /v1/payments
    shows them to a user; and the cursor of the next page (None: no more)."""
    page, next_cursor = store.list_payments(user_id, role, None, limit, cursor)
    return [s.payment for s in page], next_cursor


def refunds_page(
    payment_id: str, limit: int, cursor: str | None
) -> tuple[list[RefundResponse], str | None]:
    """A page of the payment's refunds, newest first, as GET /v1/payments/{id}/refunds shows
    them (the caller checks that the payment is theirs); and the next page's cursor."""
    page, next_cursor = store.list_refunds(payment_id, limit, cursor)
    return [s.refund for s in page], next_cursor
