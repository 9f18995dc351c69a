"""The payment state machine, in one place. Every status change goes through `after`, and
is written conditionally on the status it was read in (cashew.payments.store)."""

from __future__ import annotations

from typing import Literal

from cashew.errors import ConflictError
from cashew.payments.models import PaymentStatus

Event = Literal["capture", "cancel", "settled", "authorised", "declined", "pending"]

TRANSITIONS: dict[tuple[PaymentStatus, Event], PaymentStatus] = {
    ("requires_capture", "capture"): "succeeded",
    ("requires_capture", "cancel"): "canceled",
    ("processing", "settled"): "succeeded",  # the gateway's webhook: charge captured
    ("processing", "authorised"): "requires_capture",  # ...: authorised, capture pending
    ("processing", "declined"): "failed",
    # 3-D Secure: authentication passed, the payment goes on as it would have (settled,
    # authorised, or the gateway answers later); failed or abandoned: failed.
    ("requires_action", "settled"): "succeeded",
    ("requires_action", "authorised"): "requires_capture",
    ("requires_action", "pending"): "processing",
    ("requires_action", "declined"): "failed",
}


def after(status: PaymentStatus, event: Event) -> PaymentStatus:
    """The status a payment in `status` moves to on `event`; 409 for any other move."""
    try:
        return TRANSITIONS[(status, event)]
    except KeyError:
        raise ConflictError(f"a payment that is {status} cannot take '{event}'") from None


def refundable(status: PaymentStatus) -> bool:
    return status == "succeeded"
