"""3-D Secure: how a payment leaves `requires_action`.

A card charge the gateway answers `requires_action` is recorded with its `next_action` (the
page where the card holder authenticates) and moves no money. It leaves that status once,
by one conditional write on the status read (cashew.payments.states):

- the gateway's webhook (cashew.payments.webhooks): authentication passed, so the payment
  goes on as it would have (`succeeded` with the payee's credit in the same transaction,
  `requires_capture`, or `processing`), or failed: `failed`, `authentication_failed`;
- `abandon`: the card holder never finished (reconciliation, after `CASHEW_ACTION_TTL`):
  the same write as a failed authentication's webhook, once the gateway has voided the
  charge (so a late authentication cannot take money that Cashew never credits).

Whichever writes first wins; the others find the status moved and change nothing.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cashew import clock, dynamo
from cashew.config import get_settings
from cashew.gateways import get_gateway
from cashew.gateways.base import GatewayOutcomeUnknownError, with_retries
from cashew.observability import logger
from cashew.payments import store as payments
from cashew.payments.models import PaymentResponse, PaymentStatus

AUTHENTICATION_FAILED = "authentication_failed"
AUTHENTICATION_FAILED_MESSAGE = "the card holder did not complete 3-D Secure authentication"
DECLINED_MESSAGE = "the card was declined"


def transition_item(payment: PaymentResponse, to: PaymentStatus, **changes: Any) -> dynamo.Write:
    """`store.transition_item`, with no action left after a move out of `requires_action`."""
    if payment.status == "requires_action":
        changes["next_action"] = None
    return payments.transition_item(payment, to, **changes)


def failure_message(code: str) -> str:
    return AUTHENTICATION_FAILED_MESSAGE if code == AUTHENTICATION_FAILED else DECLINED_MESSAGE


def failed_item(payment: PaymentResponse, code: str, now: str) -> dynamo.Write:
    """The payment's move to `failed` with `code`, conditional on its status as read."""
    message = failure_message(code)
    return transition_item(
        payment, "failed", failure_code=code, failure_message=message, updated_at=now
    )


def abandon(payment_id: str) -> bool:
    """Fail a `requires_action` payment whose card holder never authenticated: the gateway
    voids the charge, then the same conditional write a failed authentication's webhook
    makes moves the payment to `failed`, `authentication_failed`. True when this call moved
    it; False when it is not (or no longer) in `requires_action`, or the gateway did not
    confirm the void (unreachable, or the charge went on meanwhile: its webhook settles it),
    so that a later run asks again."""
    stored = payments.get(payment_id)
    if stored is None or stored.payment.status != "requires_action":
        return False
    if stored.charge_id is not None and not _voided(stored.charge_id, payment_id):
        return False
    tx = dynamo.Transaction().add(
        "transition", failed_item(stored.payment, AUTHENTICATION_FAILED, clock.utcnow_str())
    )
    try:
        tx.write_retrying()
    except dynamo.TransactionCanceled as exc:
        if exc.failed("transition"):  # settled meanwhile (a webhook, another run)
            return False
        raise
    logger.info("abandoned authentication failed the payment", extra={"payment_id": payment_id})
    return True


def _voided(charge_id: str, payment_id: str) -> bool:
    key = hashlib.sha256(f"abandon:{payment_id}".encode()).hexdigest()
    attempts = get_settings().gateway_max_attempts
    try:
        charge = with_retries(
            lambda: get_gateway().void(charge_id, idempotency_key=key),
            attempts=attempts,
            failure=None,
        )
    except GatewayOutcomeUnknownError:
        charge = None
    if charge is None or charge.status != "canceled":
        logger.warning(
            "the gateway did not void an abandoned authentication",
            extra={"payment_id": payment_id, "charge_status": charge and charge.status},
        )
        return False
    return True
