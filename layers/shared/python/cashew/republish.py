"""Publish again what `PublishFailuresQueue` describes, from the tables (the outbox).

The queue holds two kinds of messages:

- Lambda's on-failure records of the publisher's stream mappings (`DDBStreamBatchInfo`: the
  stream, shard, first and last sequence numbers and the approximate arrival times of the
  batch's first and last records). The records themselves have usually left the stream (it
  keeps 24 h, and a batch is described after 23 h of retries), but the items they changed
  are in the table the stream belongs to (payments or disputes). Every item whose last
  change is at or after the window's start (less `SLACK`) is published again, with the
  outcomes its current status implies (`outcomes.of_item`). There is no upper bound: an
  item changed in the window may have changed again since (a payment refunded an hour
  later, while Lambda describes the failed batch up to 23 h after it), and its last change
  is then after the window; publishing it anyway is what guarantees that the lost outcome
  (or the later one that implies it) is published. A refund records no time of its
  settlement, only of its creation: a card refund settles at most an idempotency lifetime
  after it was created (the client's retry with the same key is what settles it), so
  refunds created up to that long before the window are published too.
- The publisher's own set-aside records (`{"reason", "record"}`: a change it could not
  read). Nothing in such a message is trusted but the item's key (`dynamodb.Keys`) and the
  stream it came from (`eventSourceARN`, one of the stack's two tables): anyone allowed to
  send to the queue could write the rest. The item is read again from its table (a
  strongly consistent GetItem) and the outcomes of the item as stored are published; a key
  that reads nothing publishes nothing (the message is deleted, and logged). A message
  without a key or a known stream, or an item that still cannot be read, stays for a
  person.

Publishing goes through `outcomes.publish`, so the log appends an outcome once
(`outcome_id`) and bus consumers deduplicate on the same `outcome_id`: publishing more than
was lost (an item changed again after the window, an outcome that was published before the
failure) applies nothing twice. A message is deleted only after everything it describes was
published (sent to the log's queue and the bus); a message this cannot act on is left on the
queue (and counted in the report). The queue is read with long polling (`run(wait=...)`),
and the run ends after a long poll that returned nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from cashew import aws, clock, outcomes
from cashew.config import get_settings
from cashew.disputes import face as disputes
from cashew.observability import logger
from cashew.payments import face as payments

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

SLACK = timedelta(minutes=5)
"""How far an item's recorded time may be from its stream record's arrival (the writer sets
`updated_at` before it commits, within a function's timeout)."""
WAIT = 20
"""Seconds of each long poll of the queue (SQS's most): a short poll may return nothing while
messages remain, so the run ends only after a long poll that returned nothing."""
_READ_MARGIN = 10  # seconds a long poll's answer may take beyond its wait
_VISIBILITY = 300
_KEY_MAX = 1024  # no id of ours is near it; DynamoDB refuses a key above 2,048 bytes
_BATCH = 10


@dataclass(frozen=True, slots=True)
class Window:
    """The changes a failure record describes: those of `table` that arrived in
    [first, last]."""

    table: str  # "payments" or "disputes"
    first: datetime
    last: datetime


@dataclass
class Report:
    messages: int = 0  # failure messages handled and deleted
    published: int = 0  # changes published (outcomes sent to the log's queue)
    left: list[str] = field(default_factory=list)  # message ids left on the queue, and why

    def summary(self) -> str:
        return (
            f"republished {self.published} change(s) from {self.messages} failure message(s);"
            f" {len(self.left)} message(s) left on the queue: {', '.join(self.left) or '-'}"
        )


def table_of(stream_arn: object) -> str | None:
    """Which of the stack's tables a stream ARN belongs to ("payments" or "disputes"), or
    None for any other."""
    settings = get_settings()
    # arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>
    parts = str(stream_arn).split("/")
    name = parts[1] if len(parts) >= 4 and parts[2] == "stream" else None
    return {settings.payments_table: "payments", settings.disputes_table: "disputes"}.get(
        name or ""
    )


def window(description: dict[str, Any]) -> Window | None:
    """The window of a `DDBStreamBatchInfo` failure record; None if it is not one or names a
    stream of neither table."""
    info = description.get("DDBStreamBatchInfo")
    if not isinstance(info, dict):
        return None
    table = table_of(info.get("streamArn", ""))
    try:
        first = _time(info["approximateArrivalOfFirstRecord"])
        last = _time(info["approximateArrivalOfLastRecord"])
    except (KeyError, ValueError):
        return None
    return Window(table, first, last) if table else None


def items_in(found: Window) -> Iterator[payments.Record | payments.Unreadable]:
    """The records of the window's table (payments; disputes: `disputes_in`) whose last
    change may be in the window, or after it (a record changed in the window and again since
    has its last change after it)."""
    since = clock.rfc3339(found.first - SLACK)
    refunds_since = clock.rfc3339(
        found.first - SLACK - timedelta(seconds=get_settings().idempotency_ttl)
    )
    for record in payments.all_records():
        if isinstance(record, payments.Unreadable):
            changed = record.changed_at
        else:
            changed = payments.changed_at(record)
        if changed >= (refunds_since if record.pk.startswith("re_") else since):
            yield record


def disputes_in(found: Window) -> list[outcomes.Change] | None:
    """The outcomes of the disputes whose last change may be in the window, or after it;
    None if one of them cannot be read."""
    changes = []
    try:
        for dispute in disputes.changed_since(clock.rfc3339(found.first - SLACK)):
            changes += outcomes.of_dispute(dispute)
    except disputes.Unreadable as error:
        logger.error("an item in the window cannot be read", extra={"pk": error.pk})
        return None
    return changes


def changes_of(description: dict[str, Any]) -> list[outcomes.Change] | None:
    """What one failure message asks to publish; None when it cannot be acted on."""
    found = window(description)
    if found is not None and found.table == "disputes":
        return disputes_in(found)
    if found is not None:
        changes = []
        for item in items_in(found):
            read = _outcomes_of(item)
            if read is None:
                logger.error("an item in the window cannot be read", extra={"pk": item.pk})
                return None
            changes += read
        return changes
    record = description.get("record")
    if isinstance(record, dict):  # set aside by the publisher: what is stored under its key?
        return _stored_changes(record)
    return None


def _stored_changes(record: dict[str, Any]) -> list[outcomes.Change] | None:
    """The outcomes of the item a set-aside stream record names, as its table stores it now:
    only the record's key and stream are used, never its images (which anyone who may send
    to the queue could have written). None when the record names no key of the stack's
    tables, or the stored item cannot be read."""
    table = table_of(record.get("eventSourceARN", ""))
    images = record.get("dynamodb")
    keys = images.get("Keys") if isinstance(images, dict) else None
    pk = keys.get("pk") if isinstance(keys, dict) and set(keys) == {"pk"} else None
    key = pk.get("S") if isinstance(pk, dict) else None
    if table is None or not isinstance(key, str) or not 0 < len(key) <= _KEY_MAX:
        return None
    if table == "disputes":
        return _stored_dispute_changes(key)
    stored = payments.read(key)
    if stored is None:
        logger.warning(
            "a set-aside change names no payment, refund or dispute stored: nothing to publish",
            extra={"pk": key[:64], "table": table},
        )
        return []
    changes = _outcomes_of(stored)
    if changes is None:
        logger.error("a set-aside item still cannot be read", extra={"pk": key[:64]})
    return changes


def _outcomes_of(item: payments.Record | payments.Unreadable) -> list[outcomes.Change] | None:
    """The outcomes of a stored payment or refund; None when it cannot be read."""
    if isinstance(item, payments.Unreadable):
        return None
    try:
        return outcomes.of_item(item)
    except (KeyError, ValueError, TypeError):  # ValidationError is a ValueError
        return None


def _stored_dispute_changes(key: str) -> list[outcomes.Change] | None:
    """`_stored_changes` of the disputes table."""
    try:
        dispute = disputes.stored(key)
    except (KeyError, ValueError, TypeError):  # ValidationError is a ValueError
        logger.error("a set-aside item still cannot be read", extra={"pk": key[:64]})
        return None
    if dispute is None:
        logger.warning(
            "a set-aside change names an item that is not stored: nothing to publish",
            extra={"pk": key[:64], "table": "disputes"},
        )
        return []
    return outcomes.of_dispute(dispute)


def run(wait: int = WAIT) -> Report:
    """Publish what every message of the failures queue describes, deleting each message
    once its changes are published; the queue is long-polled for `wait` seconds (at most
    20), and the run ends after a poll that returned nothing it had not seen (a message
    left on the queue is visible again after `_VISIBILITY`: it is not acted on twice)."""
    queue_url = get_settings().publish_failures_queue_url
    if queue_url is None:
        raise RuntimeError("CASHEW_PUBLISH_FAILURES_QUEUE_URL is not set")
    sqs, report = _queue(wait), Report()
    seen: set[str] = set()  # a message left on the queue comes back once it is visible again
    while messages := [
        m
        for m in sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=_BATCH,
            VisibilityTimeout=_VISIBILITY,
            WaitTimeSeconds=wait,
        ).get("Messages", [])
        if m["MessageId"] not in seen
    ]:
        for message in messages:
            seen.add(message["MessageId"])
            try:
                description = json.loads(message["Body"])
            except ValueError:
                description = None
            changes = changes_of(description) if isinstance(description, dict) else None
            if changes is None:
                report.left.append(message["MessageId"])
                logger.error(
                    "a failure message was left on the queue: nothing to publish from it",
                    extra={"message_id": message["MessageId"]},
                )
                continue
            if not all(outcomes.publish(changes)):  # the message stays for the next run
                raise outcomes.PublishError("the log's queue or the bus refused a change")
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            report.messages += 1
            report.published += len(changes)
    return report


def _queue(wait: int) -> SQSClient:
    """An SQS client whose read timeout outlasts a long poll of `wait` seconds (the shared
    clients' 5 s would cut a 20 s poll short)."""
    from botocore.config import Config  # noqa: PLC0415 - as cashew.aws: only when called

    config = Config(
        retries={"mode": "standard", "max_attempts": 3},
        connect_timeout=2,
        read_timeout=wait + _READ_MARGIN,
        tcp_keepalive=True,
    )
    client: SQSClient = aws.session().client("sqs", config=config)
    return client


def _time(value: object) -> datetime:
    """An ISO 8601 time as Lambda writes them (`2026-11-30T09:00:00.123Z`), in UTC."""
    return clock.to_utc(datetime.fromisoformat(str(value)))
