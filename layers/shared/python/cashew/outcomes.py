"""Payment outcomes, published from the payments table's stream: the table is the outbox.

A payment or refund changes status in the same transaction that moves its money, and
DynamoDB Streams keeps every committed change for 24 hours. The publisher function reads
them in order and turns each change of status into

- an `Outcome` on the transaction log's queue (the log deduplicates by `outcome_id`), and
- for the changes other services care about, an event on the payments bus
  (source `cashew.payments`, detail-type `payment.succeeded`, `payment.failed`,
  `payment.captured`, `payment.canceled`, `refund.succeeded`, `dispute.opened`,
  `dispute.won`, `dispute.lost`, `payout.paid` or `payout.failed`; the detail is the
  payment, refund, dispute or payout object of the contract plus `outcome_id`, the key to
  deduplicate on).

The disputes table's stream comes here too: a dispute's changes of status are outcomes.

No request handler publishes anything, so no crash between committing and publishing can
lose an outcome: a failed publish fails its stream record, which is delivered again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from cashew import aws, dynamo
from cashew.config import get_settings
from cashew.disputes import face as disputes
from cashew.ledger.models import Outcome
from cashew.observability import logger, metrics
from cashew.payments import face as payments
from cashew.payments.models import PaymentResponse
from cashew.payouts import face as payouts

EVENT_SOURCE = "cashew.payments"
NOT_OUTCOMES = frozenset({"requires_action"})
"""Payment statuses that decide nothing: a payment waiting for the card holder's 3-D Secure
authentication is no outcome (not logged, published or emailed); what it ends as is."""


class PublishError(Exception):
    """The bus refused an event; the stream record is retried."""


@dataclass(frozen=True, slots=True)
class Change:
    """What one committed change of a payment or refund publishes."""

    outcome: Outcome
    event: str | None  # the bus's detail-type; None for outcomes only the log records
    detail: dict[str, Any]


def _payment_event(before: str | None, after: str) -> str | None:
    if after == "succeeded":
        return "payment.captured" if before == "requires_capture" else "payment.succeeded"
    if after in ("failed", "canceled"):
        return f"payment.{after}"
    return None  # requires_capture, processing: not an outcome yet for other services
    # (requires_action is no outcome at all: `NOT_OUTCOMES`)


def of_images(old: dict[str, Any] | None, new: dict[str, Any] | None) -> Change | None:
    """The change between two images of an item of the payments table (deserialized), or
    None when nothing was decided: a removal, a marker, an update that kept the status."""
    if new is None or new.get("status") in NOT_OUTCOMES:
        return None
    before = old.get("status") if old else None
    if before == new.get("status"):
        return None  # e.g. a refund adding to amount_refunded
    stored = payments.from_image(new)
    if stored is not None:
        return _change(before, stored)
    if str(new.get("pk", "")).startswith("dsp_"):
        return _dispute_change(disputes.StoredDispute.from_item(new))
    payout = payouts.from_image(new)
    if payout is not None and payout.payout.status != "pending":
        return payout_change(payout)
    return None  # a pending payout is not an outcome yet


def of_item(item: payments.Record) -> list[Change]:
    """Every change a stored payment or refund certainly went through, as its outcomes,
    oldest first: the change to its current status and, when that status can only follow
    another outcome, that one too (a card refund is `pending` before it is `succeeded`; a
    dispute, `of_dispute`, is `open` before it is `won` or `lost`). For what must be in the
    log once everything committed has been published: the audit's in-flight outcomes and the
    republisher. Outcome ids are those the stream gives, so consumers deduplicate what was
    published before."""
    if isinstance(item, payments.StoredPayment) and item.payment.status in NOT_OUTCOMES:
        return []
    current = _change(None, item)
    if not isinstance(item, payments.StoredRefund):
        return [current]
    if item.payment_source == "card" and item.refund.status == "succeeded":
        return [_change(None, item.with_status("pending")), current]
    return [current]


def _change(before: str | None, stored: payments.Record) -> Change:
    if isinstance(stored, payments.StoredRefund):
        return _refund_change(stored)
    return _payment_change(before, stored.payment)


def _payment_change(before: str | None, payment: PaymentResponse) -> Change:
    outcome = Outcome(
        outcome_id=f"{payment.id}:{payment.status}",
        payment_id=payment.id,
        type=payment.type,
        status=payment.status,
        amount=payment.amount_captured or payment.amount,  # a partial capture moves less
        currency=payment.currency,
        payer_id=payment.payer_id,
        payee_id=payment.payee_id,
        source=payment.source["type"],
        failure_code=payment.failure_code,
        occurred_at=payment.updated_at,
    )
    detail = {**payment.model_dump(mode="json"), "outcome_id": outcome.outcome_id}
    return Change(outcome, _payment_event(before, payment.status), detail)


def _refund_change(stored: payments.StoredRefund) -> Change:
    """A card refund is `pending` once the money has left the payee's balance and until the
    gateway has credited the card, then `succeeded`: two outcomes. A balance refund is
    `succeeded` at once."""
    refund, payer, payee = stored.refund, stored.payment_payer_id, stored.payment_payee_id
    if payer is None or payee is None or stored.payment_source is None:
        raise KeyError("the refund does not name its payment's payer, payee and source")
    outcome = Outcome(
        outcome_id=f"{refund.id}:{refund.status}",
        payment_id=refund.payment_id,
        type="refund",
        status=refund.status,
        amount=refund.amount,
        currency=refund.currency,
        payer_id=payer,
        payee_id=payee,
        source=stored.payment_source,
        occurred_at=refund.created_at,
    )
    detail = {**refund.model_dump(mode="json"), "outcome_id": outcome.outcome_id}
    event = "refund.succeeded" if refund.status == "succeeded" else None
    return Change(outcome, event, detail)


def payout_change(stored: payouts.StoredPayout) -> Change:
    """A payout `paid` or `failed`: its owner's outcome (payer and payee both the owner, from
    the balance)."""
    payout = stored.payout
    outcome = Outcome(
        outcome_id=f"{payout.id}:{payout.status}",
        payment_id=payout.id,
        type="payout",
        status=payout.status,
        amount=payout.amount,
        currency=payout.currency,
        payer_id=stored.user_id,
        payee_id=stored.user_id,
        source="balance",
        failure_code=payout.failure_code,
        occurred_at=payout.updated_at,
    )
    detail = {**payout.model_dump(mode="json"), "outcome_id": outcome.outcome_id}
    return Change(outcome, f"payout.{payout.status}", detail)


def of_dispute(stored: disputes.StoredDispute) -> list[Change]:
    """`of_item` for a stored dispute: a `won` or `lost` one was `open` before."""
    current = _dispute_change(stored)
    if stored.dispute.status == "open":
        return [current]
    opened = stored.dispute.model_copy(update={"status": "open"})
    return [_dispute_change(replace(stored, dispute=opened)), current]


def _dispute_change(stored: disputes.StoredDispute) -> Change:
    dispute = stored.public
    outcome = Outcome(
        outcome_id=f"{dispute.id}:{dispute.status}",
        payment_id=dispute.payment_id,
        type="dispute",
        status=dispute.status,
        amount=dispute.amount,
        currency=dispute.currency,
        payer_id=dispute.payer_id,
        payee_id=dispute.payee_id,
        source=stored.source,
        occurred_at=stored.updated_at,
    )
    detail = {**dispute.model_dump(mode="json"), "outcome_id": outcome.outcome_id}
    event = "dispute.opened" if dispute.status == "open" else f"dispute.{dispute.status}"
    return Change(outcome, event, detail)


def of_stream_record(record: dict[str, Any]) -> Change | None:
    """The change a DynamoDB stream record (as Lambda delivers it) carries."""
    images = record.get("dynamodb", {})
    old, new = images.get("OldImage"), images.get("NewImage")
    return of_images(
        dynamo.deserialize(old) if old else None, dynamo.deserialize(new) if new else None
    )


def set_aside(record: dict[str, Any], error: Exception) -> None:
    """A change that cannot be read (a bug, or an item written by hand) would fail every
    delivery and hold up every change after it: the whole record goes to the failures queue
    (with an alarm) for a person to look at, and the stream moves on."""
    queue_url = get_settings().publish_failures_queue_url
    if queue_url is None:
        raise error
    body = {"reason": f"{type(error).__name__}: {error}", "record": record}
    aws.sqs().send_message(QueueUrl=queue_url, MessageBody=json.dumps(body, default=str))
    metrics.add_metric(name="OutcomeUnreadable", unit=MetricUnit.Count, value=1)
    logger.error("a payments change could not be read; set aside", extra={"reason": str(error)})


BATCH = 10  # SendMessageBatch and PutEvents each take at most 10 entries
BATCH_BYTES = 256 * 1024  # and at most 256 KiB in all, per request
_ENTRY_BYTES = 1024  # an entry's own fields (its id; the event's source, type, bus), over-counted


def publish(changes: Sequence[Change]) -> list[bool]:
    """The outcomes to the log's queue (SendMessageBatch), then the events of those it took to
    the bus (PutEvents), 10 at a time: one change published per entry, not per request.
    Returns, per change, whether both took it. A change either refused is published again
    when its stream record is delivered again (the log deduplicates, and bus consumers
    deduplicate on the detail's `outcome_id`); one refused entry fails only its change."""
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - boto3 is loaded

    settings = get_settings()
    sent = [True] * len(changes)
    bodies = [change.outcome.model_dump_json() for change in changes]
    for chunk in _chunks(range(len(changes)), lambda i: len(bodies[i].encode()) + _ENTRY_BYTES):
        entries = [{"Id": str(i), "MessageBody": bodies[i]} for i in chunk]
        try:
            response = aws.sqs().send_message_batch(
                QueueUrl=settings.outcomes_queue_url,
                Entries=entries,  # type: ignore[arg-type]
            )
        except (BotoCoreError, ClientError) as exc:
            _refused(sent, chunk, "the log's queue", str(exc))
            continue
        for failed in response.get("Failed", []):
            _refused(sent, [int(failed["Id"])], "the log's queue", failed.get("Code", ""))
    details = {
        i: json.dumps(change.detail, separators=(",", ":"))
        for i, change in enumerate(changes)
        if sent[i] and change.event is not None
    }
    for chunk in _chunks(list(details), lambda i: len(details[i].encode()) + _ENTRY_BYTES):
        events = [
            {
                "EventBusName": settings.event_bus_name,
                "Source": EVENT_SOURCE,
                "DetailType": changes[i].event,
                "Detail": details[i],
            }
            for i in chunk
        ]
        try:
            answer = aws.events().put_events(Entries=events)  # type: ignore[arg-type]
        except (BotoCoreError, ClientError) as exc:
            _refused(sent, chunk, "the bus", str(exc))
            continue
        for i, entry in zip(chunk, answer["Entries"], strict=True):
            if entry.get("ErrorCode"):
                _refused(sent, [i], "the bus", f"{entry['ErrorCode']}: {entry.get('ErrorMessage')}")
    published = sum(sent)
    if published:
        metrics.add_metric(name="OutcomePublished", unit=MetricUnit.Count, value=published)
    for change, ok in zip(changes, sent, strict=True):
        if ok:
            logger.info(
                "outcome published",
                extra={"outcome_id": change.outcome.outcome_id, "event": change.event},
            )
    return sent


def _chunks(indexes: Iterable[int], size: Callable[[int], int]) -> Iterator[list[int]]:
    """`indexes` in runs of at most BATCH whose sizes add up to at most BATCH_BYTES."""
    chunk: list[int] = []
    total = 0
    for i in indexes:
        if chunk and (len(chunk) == BATCH or total + size(i) > BATCH_BYTES):
            yield chunk
            chunk, total = [], 0
        chunk.append(i)
        total += size(i)
    if chunk:
        yield chunk


def _refused(sent: list[bool], indexes: Iterable[int], by: str, reason: str) -> None:
    for i in indexes:
        sent[i] = False
    logger.warning(
        "outcomes refused; their records are retried", extra={"by": by, "reason": reason}
    )
