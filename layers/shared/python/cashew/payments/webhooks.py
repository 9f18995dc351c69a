"""The gateway's webhooks: the outcome of a charge that was `processing`.

A webhook is verified (signature over the raw body, 5-minute tolerance) before anything is
read from it. Its effect is one transaction: the event's dedupe marker, the payment's move
out of `processing` (conditional on it still being there) and, when the charge succeeded,
the payee's credit. A repeated event, an event for an unknown payment and an event that
arrives after the payment moved on are accepted and change nothing.

A gateway event never moves more money than the payment authorised: an event whose amount
is not within 1..authorised (or whose currency is not the payment's) is refused by
`refusal`. It is accepted (200, so the gateway does not resend it forever) but changes
nothing: no credit, no dedupe marker, and the payment stays `processing`. Staying put is
the safe choice: the event cannot be trusted for the amount, so it cannot be trusted for
the outcome either; failing the payment could drop a charge the card holder really paid,
settling it at the authorised amount would act on a forged or broken message. The genuine
event settles it. Each refusal is logged as an error (ids and amounts only, never the body)
and counted (`WebhookAmountRefused`), which raises the template's WebhookAmountRefusedAlarm:
a refusal means a forged or broken event, or a leaked webhook secret.
"""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit

from cashew import clock, dynamo
from cashew.accounts import face as accounts
from cashew.errors import ConflictError, WebhookRejectedError
from cashew.gateways import get_gateway
from cashew.gateways.base import WebhookError, WebhookEvent
from cashew.observability import logger, metrics
from cashew.payments import states
from cashew.payments import store as payments
from cashew.payments.models import PaymentResponse

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
        _count("WebhookIgnored")
        return
    effect = _effect(event)
    if effect is None:
        return  # refused, and counted as WebhookAmountRefused
    marker = payments.webhook_seen_item(event.id, clock.epoch() + DEDUPE_SECONDS)
    tx = dynamo.Transaction().add("marker", marker).extend(effect)
    try:
        tx.write_retrying()
    except dynamo.TransactionCanceled as exc:
        if exc.failed("marker"):
            logger.info("webhook seen before", extra={"event_id": event.id})
            _count("WebhookIgnored")
            return
        if exc.failed(*effect.names):  # the payment moved on meanwhile
            logger.info("webhook too late to change the payment", extra={"event_id": event.id})
            _count("WebhookIgnored")
            return
        raise
    _count("WebhookApplied" if effect.names else "WebhookIgnored")


def _count(name: str) -> None:
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def refusal(event: WebhookEvent, payment: PaymentResponse, status: str) -> str | None:
    """Why `event`, which would move `payment` to `status`, must move nothing; None when it
    may. Only a settled charge credits money, and never more than was authorised (the
    webhooks of a processing charge come before any capture or refund, so what remains
    refundable is not at stake here: refunds are asked by us and answered synchronously)."""
    if event.currency is not None and event.currency.upper() != payment.currency:
        return "currency"
    if status != "succeeded":
        return None  # authorised or declined: no money moves
    captured = payment.amount if event.amount_captured is None else event.amount_captured
    if captured <= 0:
        return "amount_not_positive"
    if captured > payment.amount:
        return "amount_above_authorised"
    return None


def _effect(event: WebhookEvent) -> dynamo.Transaction | None:
    """The payment's move this event causes; none for an unknown or already settled one,
    and None (nothing at all is written) for an event `refusal` refuses."""
    stored = payments.get(event.payment_id) if event.payment_id else None
    if stored is None or stored.charge_id != event.charge_id or event.status not in _EVENTS:
        logger.info("webhook for no payment of ours", extra={"event_id": event.id})
        return dynamo.Transaction()
    payment = stored.payment
    try:
        status = states.after(payment.status, _EVENTS[event.status])
    except ConflictError:
        return dynamo.Transaction()
    reason = refusal(event, payment, status)
    if reason is not None:
        metrics.add_metric(name="WebhookAmountRefused", unit=MetricUnit.Count, value=1)
        logger.error(
            "webhook refused: it would move money the payment does not explain",
            extra={
                "event_id": event.id,
                "payment_id": payment.id,
                "reason": reason,
                "event_amount": event.amount_captured,
                "authorised": payment.amount,
            },
        )
        return None
    now = clock.utcnow_str()
    if status == "failed":
        code = event.failure_code or "card_declined"
        return dynamo.Transaction().add("transition", payments.transition_item(
            payment, status, failure_code=code, failure_message="the card was declined",
            updated_at=now,
        ))  # fmt: skip
    captured = payment.amount if event.amount_captured is None else event.amount_captured
    captured = captured if status == "succeeded" else 0
    transition = payments.transition_item(payment, status, amount_captured=captured, updated_at=now)
    tx = dynamo.Transaction().add("transition", transition)
    if status == "succeeded":
        tx.add("credit", accounts.credit_item(payment.payee_id, payment.currency, captured))
    return tx
