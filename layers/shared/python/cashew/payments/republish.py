"""Publish again what `PublishFailuresQueue` describes, from the tables (the outbox).

The queue holds two kinds of messages:

- Lambda's on-failure records of the publisher's stream mappings (`DDBStreamBatchInfo`: the
  stream, shard, first and last sequence numbers and the approximate arrival times of the
  batch's first and last records). The records themselves have usually left the stream (it
  keeps 24 h, and a batch is described after 23 h of retries), but the items they changed
  are in the table the stream belongs to (payments or disputes). Every item whose last
  change falls in the batch's window (widened by `SLACK`) is published again, with the
  outcomes its current status implies (`outcomes.of_item`). A refund records no time of its
  settlement, only of its creation: a card refund settles at most an idempotency lifetime
  after it was created (the client's retry with the same key is what settles it), so
  refunds created up to that long before the window are published too.
- The publisher's own set-aside records (`{"reason", "record"}`: a change it could not
  read). It is read again; if it still cannot be read the message stays for a person.

Publishing goes through `outcomes.publish`, so the log appends an outcome once
(`outcome_id`) and bus consumers deduplicate on the same `outcome_id`: publishing more than
was lost (an item changed again after the window, an outcome that was published before the
failure) applies nothing twice. A message is deleted only after everything it describes was
published; a message this cannot act on is left on the queue (and counted in the report).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cashew import aws, clock
from cashew.config import get_settings
from cashew.disputes import store as disputes
from cashew.observability import logger
from cashew.payments import outcomes
from cashew.payments import store as payments

SLACK = timedelta(minutes=5)
"""How far an item's recorded time may be from its stream record's arrival (the writer sets
`updated_at` before it commits, within a function's timeout)."""
_VISIBILITY = 300
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


def window(description: dict[str, Any]) -> Window | None:
    """The window of a `DDBStreamBatchInfo` failure record; None if it is not one or names a
    stream of neither table."""
    info = description.get("DDBStreamBatchInfo")
    if not isinstance(info, dict):
        return None
    settings = get_settings()
    # arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>
    parts = str(info.get("streamArn", "")).split("/")
    name = parts[1] if len(parts) >= 4 and parts[2] == "stream" else None
    table = {settings.payments_table: "payments", settings.disputes_table: "disputes"}.get(
        name or ""
    )
    try:
        first = _time(info["approximateArrivalOfFirstRecord"])
        last = _time(info["approximateArrivalOfLastRecord"])
    except (KeyError, ValueError):
        return None
    return Window(table, first, last) if table else None


def items_in(found: Window) -> Iterator[dict[str, Any]]:
    """The items of the window's table whose last change may be in the window."""
    since, until = clock.rfc3339(found.first - SLACK), clock.rfc3339(found.last + SLACK)
    if found.table == "disputes":
        for item in disputes.all_disputes():
            if since <= str(item.get("updated_at", "")) <= until:
                yield item
        return
    refunds_since = clock.rfc3339(
        found.first - SLACK - timedelta(seconds=get_settings().idempotency_ttl)
    )
    for item in payments.all_records():
        if str(item["pk"]).startswith("re_"):
            if refunds_since <= str(item.get("created_at", "")) <= until:
                yield item
        elif since <= str(item.get("updated_at", "")) <= until:
            yield item


def changes_of(description: dict[str, Any]) -> list[outcomes.Change] | None:
    """What one failure message asks to publish; None when it cannot be acted on."""
    found = window(description)
    if found is not None:
        changes = []
        for item in items_in(found):
            try:
                changes += outcomes.of_item(item)
            except (KeyError, ValueError, TypeError):  # ValidationError is a ValueError
                logger.error("an item in the window cannot be read", extra={"pk": item["pk"]})
                return None
        return changes
    record = description.get("record")
    if isinstance(record, dict):  # set aside by the publisher: can it be read now?
        try:
            change = outcomes.of_stream_record(record)
        except (KeyError, ValueError, TypeError):
            return None
        return [change] if change else []
    return None


def run() -> Report:
    """Publish what every message of the failures queue describes, deleting each message
    once its changes are published."""
    queue_url = get_settings().publish_failures_queue_url
    if queue_url is None:
        raise RuntimeError("CASHEW_PUBLISH_FAILURES_QUEUE_URL is not set")
    sqs, report = aws.sqs(), Report()
    while messages := sqs.receive_message(
        QueueUrl=queue_url, MaxNumberOfMessages=_BATCH, VisibilityTimeout=_VISIBILITY
    ).get("Messages"):
        for message in messages:
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
            for change in changes:
                outcomes.publish(change)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            report.messages += 1
            report.published += len(changes)
    return report


def _time(value: object) -> datetime:
    """An ISO 8601 time as Lambda writes them (`2026-11-30T09:00:00.123Z`), in UTC."""
    return clock.to_utc(datetime.fromisoformat(str(value)))
