"""The gateway's webhooks: the outcome of a charge that was `processing`.

A webhook is verified (signature over the raw body, 5-minute tolerance) before anything is
read from it. Its effect is one transaction: the event's dedupe marker, the payment's move
out of `processing` (conditional on it still being there) and, when the charge succeeded,
the payee's credit. A repeated event, an event for an unknown payment and an event that
arrives after the payment moved on are accepted and change nothing.
"""

from __future__ import annotations

from typing import Any

from cashew import clock, dynamo
from cashew.accounts import store as accounts
from cashew.errors import ConflictError, WebhookRejectedError
from cashew.observability import logger
from cashew.payments import states
from cashew.payments import store as payments
from cashew.payments.gateways import get_gateway
from cashew.payments.gateways.base import WebhookError, WebhookEvent
from cashew.payments.results import transact

DEDUPE_SECONDS = 30 * 86400

_EVENTS: dict[str, states.Event] = {
    "succeeded": "settled",
    "requires_capture": "authorised",
    "failed": "declined",
}


def signature_header() -> str:
    return get_gateway().signature_header


def handle(payload: bytes, signature: str | None) -> None:
    try:
        event = get_gateway().parse_webhook(payload, signature, clock.epoch())
    except WebhookError as exc:
        raise WebhookRejectedError(str(exc) or "the webhook signature is invalid") from exc
    if event is None:
        return
    marker = payments.webhook_seen_item(event.id, clock.epoch() + DEDUPE_SECONDS)
    items = [marker, *_effect(event)]
    try:
        transact(items)
    except dynamo.TransactionCanceled as exc:
        if exc.failed(0):
            logger.info("webhook seen before", extra={"event_id": event.id})
            return
        if any(exc.failed(i) for i in range(1, len(items))):  # the payment moved on meanwhile
            logger.info("webhook too late to change the payment", extra={"event_id": event.id})
            return
        raise


def _effect(event: WebhookEvent) -> list[dict[str, Any]]:
    """The payment's move this event causes; none for an unknown or already settled one."""
    stored = payments.get(event.payment_id) if event.payment_id else None
    if stored is None or stored.charge_id != event.charge_id or event.status not in _EVENTS:
        logger.info("webhook for no payment of ours", extra={"event_id": event.id})
        return []
    payment = stored.payment
    try:
        status = states.after(payment.status, _EVENTS[event.status])
    except ConflictError:
        return []
    now = clock.utcnow_str()
    if status == "failed":
        code = event.failure_code or "card_declined"
        return [
            payments.transition_item(
                payment, status, failure_code=code, failure_message="the card was declined",
                updated_at=now,
            )
        ]  # fmt: skip
    captured = (event.amount_captured or payment.amount) if status == "succeeded" else 0
    items = [payments.transition_item(payment, status, amount_captured=captured, updated_at=now)]
    if status == "succeeded":
        items.append(accounts.credit_item(payment.payee_id, payment.currency, captured))
    return items
