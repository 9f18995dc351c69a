"""The gateway's webhooks: the outcome of a charge that was `processing` or `requires_action`.

A webhook is verified (signature over the raw body, 5-minute tolerance) before anything is
read from it. Its effect is one transaction: the event's dedupe marker, the payment's move
out of `processing` or `requires_action` (conditional on it still being there; a 3-D Secure
payment's `next_action` cleared with it, cashew.payments.actions) and, when the charge succeeded,
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

A payout event (`payout.paid` / `payout.failed`) settles a pending payout with the write its
`payouts` argument gives (`cashew.payouts.settle.webhook_effect`: payouts sit above payments,
so the handler hands it in), with the dedupe marker in the same transaction; without one, a
payout event is ignored.

A card update (Stripe `payment_method.automatically_updated`, the sandbox's event of that
name) is one transaction too: the dedupe marker and the payment method's new last4 and
expiry, `active` again; for a token no method of ours has, nothing but the marker. After a
charge event is applied, the charged method is kept current as after a synchronous charge:
a success sets its `last_used_at`, an `expired_card` decline makes it `expired`
(best effort, after the money is committed, as `payments.create._keep_current`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from cashew import clock, dynamo
from cashew.accounts import face as accounts
from cashew.errors import ConflictError, WebhookRejectedError
from cashew.gateways import get_gateway
from cashew.gateways.base import CardUpdate, PayoutEvent, WebhookError, WebhookEvent
from cashew.observability import logger, metrics
from cashew.payments import actions, states
from cashew.payments import store as payments
from cashew.payments.models import PaymentResponse

DEDUPE_SECONDS = 30 * 86400

_EVENTS: dict[str, states.Event] = {
    "succeeded": "settled",
    "requires_capture": "authorised",
    "processing": "pending",  # only from requires_action: authenticated, answered later
    "failed": "declined",
}


def signature_header() -> str:
    return get_gateway().signature_header


PayoutEffect = Callable[[PayoutEvent], dynamo.Transaction]
"""What a payout event writes (besides its dedupe marker)."""


def handle(payload: bytes, signature: str | None, payouts: PayoutEffect | None = None) -> None:
    try:
        event = get_gateway().parse_webhook(payload, signature, clock.epoch())
    except WebhookError as exc:
        raise WebhookRejectedError(str(exc) or "the webhook signature is invalid") from exc
    if event is None:
        _count("WebhookIgnored")
        return
    applied = apply(event, payouts)
    if applied is not None:
        _count("WebhookApplied" if applied else "WebhookIgnored")


def apply(
    event: WebhookEvent | CardUpdate | PayoutEvent, payouts: PayoutEffect | None = None
) -> bool | None:
    """Apply a verified event: its effect, with its dedupe marker, in one transaction. True
    when it changed something, False when it changed nothing (seen before, too late, for no
    payment of ours), None when it was refused (counted as WebhookAmountRefused).
    Reconciliation applies what it asked of the gateway through here too, so a webhook and a
    run settle a payment with the same conditional write, once. A payout's event is written
    by `payouts` (cashew.payouts.settle): without it, the event is not consumed."""
    if isinstance(event, PayoutEvent):  # a pending payout's outcome
        if payouts is None:
            raise TypeError("a payout event needs the payouts' effect: it would be lost")
        effect: _Effect | None = _Effect(payouts(event))
    elif isinstance(event, CardUpdate):
        effect = _card_effect(event)
    else:
        effect = _effect(event)
    if effect is None:
        return None  # refused, and counted as WebhookAmountRefused
    marker = payments.webhook_seen_item(event.id, clock.epoch() + DEDUPE_SECONDS)
    tx = dynamo.Transaction().add("marker", marker).extend(effect.tx)
    try:
        tx.write_retrying()
    except dynamo.TransactionCanceled as exc:
        if exc.failed("marker"):
            logger.info("webhook seen before", extra={"event_id": event.id})
            return False
        if exc.failed(*effect.tx.names):  # the payment moved on (or the method went) meanwhile
            logger.info("webhook too late to change the payment", extra={"event_id": event.id})
            return False
        raise
    if effect.charged is not None:
        _keep_current(effect.charged, effect.tx)
    return bool(effect.tx.names)


@dataclass(frozen=True)
class _Effect:
    """What an event writes (with its dedupe marker, in one transaction), and the payment
    whose charge it settled (to keep its payment method current afterwards)."""

    tx: dynamo.Transaction = field(default_factory=dynamo.Transaction)
    charged: PaymentResponse | None = None


def _card_effect(event: CardUpdate) -> _Effect:
    """The payment method's update; none for a token no method of ours has."""
    found = accounts.method_of_token(event.token)
    if found is None:
        logger.info("card update for no payment method of ours", extra={"event_id": event.id})
        return _Effect()
    owner, method_id = found
    logger.info(
        "card updated by the gateway", extra={"event_id": event.id, "payment_method_id": method_id}
    )
    item = accounts.card_update_item(owner, method_id, event.last4, event.exp_month, event.exp_year)
    return _Effect(dynamo.Transaction().add("card", item))


def _keep_current(payment: PaymentResponse, tx: dynamo.Transaction) -> None:
    """After a settled charge (committed): as a synchronous charge does, a success sets the
    method's `last_used_at` and an `expired_card` decline makes it `expired`; each gives way
    (no error) when it loses a race, and a failure here changes nothing of the payment."""
    method_id = payment.source.get("payment_method_id")
    if method_id is None:
        return
    try:
        if "credit" in tx or payment.status == "requires_capture":
            accounts.mark_method_used(payment.payer_id, method_id, clock.utcnow_str())
        elif payment.failure_code == "expired_card" and accounts.mark_method_expired(
            payment.payer_id, method_id
        ):
            logger.info("payment method expired", extra={"payment_method_id": method_id})
    except (BotoCoreError, ClientError):
        logger.warning(
            "payment method not updated after the webhook",
            extra={"payment_method_id": method_id, "payment_id": payment.id},
        )


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


def _effect(event: WebhookEvent) -> _Effect | None:
    """The payment's move this event causes; none for an unknown or already settled one,
    and None (nothing at all is written) for an event `refusal` refuses."""
    stored = payments.get(event.payment_id) if event.payment_id else None
    if stored is None or stored.charge_id != event.charge_id or event.status not in _EVENTS:
        logger.info("webhook for no payment of ours", extra={"event_id": event.id})
        return _Effect()
    payment = stored.payment
    try:
        status = states.after(payment.status, _EVENTS[event.status])
    except ConflictError:
        return _Effect()
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
        settled = payment.model_copy(update={"status": status, "failure_code": code})
        transition = actions.failed_item(payment, code, now)
        return _Effect(dynamo.Transaction().add("transition", transition), settled)
    captured = payment.amount if event.amount_captured is None else event.amount_captured
    captured = captured if status == "succeeded" else 0
    transition = actions.transition_item(payment, status, amount_captured=captured, updated_at=now)
    tx = dynamo.Transaction().add("transition", transition)
    if status == "succeeded":
        credit = accounts.credit_item(
            payment.payee_id, payment.currency, captured, spread_by=payment.id
        )
        tx.add("credit", credit)
    return _Effect(tx, payment.model_copy(update={"status": status}))
