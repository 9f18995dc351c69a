"""The event source mappings of the template (SQS queues, DynamoDB streams), as Lambda's
pollers run them.

One thread per `SQS` event: it receives up to BatchSize messages (waiting up to
MaximumBatchingWindowInSeconds to fill a batch), invokes the function with a real SQS event,
and deletes what succeeded: with ReportBatchItemFailures, every record not listed in the
response's batchItemFailures; without it, the whole batch when the invocation succeeded. A
failed invocation deletes nothing. What is not deleted is received again once its visibility
timeout is over, and after the queue's maxReceiveCount receives the endpoint moves it to the
dead-letter queue (set CASHEW_LOCAL_VISIBILITY_TIMEOUT to see that happen in seconds).

One thread per `DynamoDB` event: it reads each shard of the table's stream in order, from its
StartingPosition, and invokes the function with up to BatchSize records (without waiting to
fill a batch). What succeeded is checkpointed: with ReportBatchItemFailures, every record
before the lowest sequence number listed in batchItemFailures; without it, the whole batch
when the invocation succeeded. The rest is delivered again, with a growing pause, until it
succeeds or, past MaximumRetryAttempts or MaximumRecordAgeInSeconds, the batch is described
on the OnFailure queue (as Lambda describes it) and skipped.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from local.cfn import REGION, Resources
from local.provision import ClientFactory
from local.runtime import Invocation
from local.specs import FunctionSpec, SqsEvent, StreamEvent

_MAX_PER_RECEIVE = 10  # SQS's limit per ReceiveMessage
_log = logging.getLogger(__name__)


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    attribute: dict[str, Any] = {
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": [b64(item) for item in value.get("BinaryListValues", [])],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = b64(value["BinaryValue"])
    return attribute


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS poller builds from `messages` (boto3 receive_message's)."""
    records = []
    for message in messages:
        record = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": dict(message.get("Attributes", {})),
            "messageAttributes": {
                name: _message_attribute(value)
                for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message["MD5OfBody"],
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": REGION,
        }
        if "MD5OfMessageAttributes" in message:
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        records.append(record)
    return {"Records": records}


def succeeded(
    messages: list[dict[str, Any]], invocation: Invocation, report_failures: bool
) -> list[dict[str, Any]]:
    """The messages of a batch to delete after `invocation` processed it."""
    if not invocation.ok:
        return []
    if not report_failures:
        return messages
    response = invocation.payload
    failures = response.get("batchItemFailures") if isinstance(response, dict) else None
    if not failures:  # no response, or an empty list of failures: all succeeded
        return messages
    ids = {message["MessageId"] for message in messages}
    failed = {item.get("itemIdentifier") if isinstance(item, dict) else None for item in failures}
    if not failed <= ids:  # an identifier that is not in the batch fails the whole batch
        return []
    return [message for message in messages if message["MessageId"] not in failed]


class _Mapping(threading.Thread):
    """An event source mapping's poller: `poll()` until `stop()`, surviving its errors."""

    idle_wait = 0.0  # seconds to wait after a poll that delivered nothing

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def poll(self) -> int:
        """Deliver what there is; returns how many records were delivered."""
        raise NotImplementedError

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                if not self.poll():
                    self._stopping.wait(self.idle_wait)
            except Exception:  # noqa: BLE001 - the mapping keeps polling, as Lambda's does
                _log.exception("%s: polling failed", self.name)
                self._stopping.wait(1)


class QueuePoller(_Mapping):
    """The event source mapping `event`, until `stop()`."""

    def __init__(
        self,
        event: SqsEvent,
        queue_url: str,
        queue_arn: str,
        invoke: Callable[[str, Any], Invocation],
        clients: ClientFactory,
    ) -> None:
        super().__init__(f"sqs:{event.queue_id}->{event.function_id}")
        self.event, self._url, self._arn, self._invoke = event, queue_url, queue_arn, invoke
        self._sqs = clients("sqs")

    def poll(self) -> int:
        """One batch (receiving waits up to a second for the first message)."""
        batch = self._collect()
        if batch:
            self._process(batch)
        return len(batch)

    def _receive(self, count: int, wait: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self._url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages: list[dict[str, Any]] = response.get("Messages", [])
        return messages

    def _collect(self) -> list[dict[str, Any]]:
        """A batch: up to BatchSize messages, received within the batching window."""
        batch = self._receive(min(_MAX_PER_RECEIVE, self.event.batch_size), wait=1)
        deadline = time.monotonic() + self.event.batching_window
        while batch and len(batch) < self.event.batch_size and time.monotonic() < deadline:
            more = self._receive(min(_MAX_PER_RECEIVE, self.event.batch_size - len(batch)), wait=0)
            batch += more
            if not more:
                self._stopping.wait(0.1)
        return batch

    def _process(self, batch: list[dict[str, Any]]) -> None:
        invocation = self._invoke(self.event.function_id, sqs_event(batch, self._arn))
        done = succeeded(batch, invocation, self.event.report_batch_item_failures)
        if len(done) < len(batch):
            _log.warning(
                "%s: %d of %d messages failed, they will be retried",
                self.event.function_id,
                len(batch) - len(done),
                len(batch),
            )
        for start in range(0, len(done), _MAX_PER_RECEIVE):
            entries = [
                {"Id": str(i), "ReceiptHandle": message["ReceiptHandle"]}
                for i, message in enumerate(done[start : start + _MAX_PER_RECEIVE])
            ]
            self._sqs.delete_message_batch(QueueUrl=self._url, Entries=entries)


def stream_event(records: list[dict[str, Any]], stream_arn: str) -> dict[str, Any]:
    """The event Lambda's DynamoDB stream poller builds from `records` (boto3
    get_records's)."""
    delivered = []
    for record in records:
        images = dict(record["dynamodb"])
        created = images.get("ApproximateCreationDateTime")
        if isinstance(created, datetime):
            images["ApproximateCreationDateTime"] = int(created.timestamp())
        delivered.append(
            {
                "eventID": record["eventID"],
                "eventName": record["eventName"],
                "eventVersion": record.get("eventVersion", "1.1"),
                "eventSource": "aws:dynamodb",
                "awsRegion": REGION,
                "dynamodb": images,
                "eventSourceARN": stream_arn,
            }
        )
    return {"Records": delivered}


def first_failed(
    records: list[dict[str, Any]], invocation: Invocation, report_failures: bool
) -> int | None:
    """The index of the first record of a batch that must be delivered again, or None."""
    if not invocation.ok:
        return 0
    if not report_failures:
        return None
    response = invocation.payload
    if response is not None and not isinstance(response, dict):
        return 0  # a response Lambda cannot read fails the whole batch
    failures = response.get("batchItemFailures") if response else None
    if not failures:
        return None
    positions = {r["dynamodb"]["SequenceNumber"]: i for i, r in enumerate(records)}
    failed = [item.get("itemIdentifier") if isinstance(item, dict) else None for item in failures]
    if not all(sequence in positions for sequence in failed):
        return 0  # an identifier that is not in the batch fails the whole batch
    return min(positions[str(sequence)] for sequence in failed)


class StreamPoller(_Mapping):
    """The event source mapping `event` from a DynamoDB stream, until `stop()`. `step()`
    delivers one batch per shard, for tests that drive it by hand."""

    idle_wait = 0.2

    def __init__(
        self,
        event: StreamEvent,
        stream_arn: str,
        invoke: Callable[[str, Any], Invocation],
        clients: ClientFactory,
        failure_queue_url: str | None = None,
    ) -> None:
        super().__init__(f"stream:{event.table_id}->{event.function_id}")
        self.event, self._arn, self._invoke = event, stream_arn, invoke
        self._streams, self._sqs = clients("dynamodbstreams"), clients("sqs")
        self._failure_queue_url = failure_queue_url
        self._checkpoints: dict[str, str | None] = {}  # shard -> last sequence number done
        self._attempts: dict[tuple[str, str], int] = {}  # (shard, first sequence) -> count

    def poll(self) -> int:
        return self.step()

    def step(self) -> int:
        """Deliver one batch from each shard; returns how many records were delivered."""
        return sum(self._step(shard) for shard in self._shards())

    def _shards(self) -> list[str]:
        if not self._checkpoints:
            description = self._streams.describe_stream(StreamArn=self._arn)
            for shard in description["StreamDescription"]["Shards"]:
                self._checkpoints.setdefault(shard["ShardId"], None)
        return list(self._checkpoints)

    def skip(self) -> dict[str, str | None]:
        """Move past every record in the stream without delivering it (a test that only
        wants its own records); returns the checkpoints, for `rewind`."""
        for shard in self._shards():
            while iterator := self._iterator(shard):
                response = self._streams.get_records(ShardIterator=iterator, Limit=1000)
                if not response.get("Records"):
                    break
                self._checkpoints[shard] = response["Records"][-1]["dynamodb"]["SequenceNumber"]
        return dict(self._checkpoints)

    def rewind(self, checkpoints: dict[str, str | None]) -> None:
        """Deliver again everything after `checkpoints` (as after a lost checkpoint)."""
        self._checkpoints = dict(checkpoints)

    def _iterator(self, shard: str) -> str | None:
        """An iterator from the shard's checkpoint. A new one for every read: the embedded
        endpoint's iterators can go stale, and a fresh one costs one local call."""
        checkpoint = self._checkpoints[shard]
        where: dict[str, str] = (
            {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": checkpoint}
            if checkpoint
            else {"ShardIteratorType": self.event.starting_position}
        )
        response = self._streams.get_shard_iterator(StreamArn=self._arn, ShardId=shard, **where)
        iterator: str | None = response.get("ShardIterator")
        return iterator

    def _step(self, shard: str) -> int:
        iterator = self._iterator(shard)
        if iterator is None:
            return 0
        response = self._streams.get_records(ShardIterator=iterator, Limit=self.event.batch_size)
        records: list[dict[str, Any]] = response.get("Records", [])
        if not records:
            return 0
        invocation = self._invoke(self.event.function_id, stream_event(records, self._arn))
        failed = first_failed(records, invocation, self.event.report_batch_item_failures)
        done = records if failed is None else records[:failed]
        if done:
            self._checkpoints[shard] = done[-1]["dynamodb"]["SequenceNumber"]
        if failed is not None:
            self._retry_or_give_up(shard, records[failed:])
        return len(records)

    def _retry_or_give_up(self, shard: str, rest: list[dict[str, Any]]) -> None:
        first = rest[0]["dynamodb"]["SequenceNumber"]
        attempts = self._attempts.pop((shard, first), 0) + 1
        created = rest[0]["dynamodb"].get("ApproximateCreationDateTime")
        age = (datetime.now(UTC) - created).total_seconds() if created else 0
        retries, max_age = self.event.maximum_retry_attempts, self.event.maximum_record_age
        too_many = retries != -1 and attempts > retries
        too_old = max_age != -1 and age > max_age
        if not (too_many or too_old):
            self._attempts[(shard, first)] = attempts
            _log.warning(
                "%s: %d stream records failed, delivering them again (attempt %d)",
                self.event.function_id, len(rest), attempts,
            )  # fmt: skip
            self._stopping.wait(min(0.1 * 2 ** (attempts - 1), 5.0))
            return
        condition = "RetryAttemptsExhausted" if too_many else "EventAgeExceeded"
        self._give_up(shard, rest, attempts, condition)

    def _give_up(
        self, shard: str, rest: list[dict[str, Any]], attempts: int, condition: str
    ) -> None:
        """Skip the batch, describing it on the OnFailure queue the way Lambda does."""
        self._checkpoints[shard] = rest[-1]["dynamodb"]["SequenceNumber"]
        _log.error(
            "%s: gave up on %d stream records (%s)", self.event.function_id, len(rest), condition
        )
        if self._failure_queue_url is None:
            return

        def arrival(record: dict[str, Any]) -> str:
            created = record["dynamodb"].get("ApproximateCreationDateTime")
            return created.isoformat() if isinstance(created, datetime) else ""

        description = {
            "requestContext": {
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "version": "1.0",
            "timestamp": datetime.now(UTC).isoformat(),
            "DDBStreamBatchInfo": {
                "shardId": shard,
                "startSequenceNumber": rest[0]["dynamodb"]["SequenceNumber"],
                "endSequenceNumber": rest[-1]["dynamodb"]["SequenceNumber"],
                "approximateArrivalOfFirstRecord": arrival(rest[0]),
                "approximateArrivalOfLastRecord": arrival(rest[-1]),
                "batchSize": len(rest),
                "streamArn": self._arn,
            },
        }
        self._sqs.send_message(
            QueueUrl=self._failure_queue_url, MessageBody=json.dumps(description)
        )


class Consumers:
    """Every event source mapping of `specs` (queues and streams), started and stopped
    together."""

    def __init__(
        self,
        specs: Mapping[str, FunctionSpec],
        resources: Resources,
        invoke: Callable[[str, Any], Invocation],
        clients: ClientFactory,
    ) -> None:
        self.pollers = [
            QueuePoller(
                event,
                resources.get_att(event.queue_id, "QueueUrl"),
                resources.get_att(event.queue_id, "Arn"),
                invoke,
                clients,
            )
            for spec in specs.values()
            for event in spec.sqs_events
        ]
        self.stream_pollers = [
            StreamPoller(
                event,
                resources.get_att(event.table_id, "StreamArn"),
                invoke,
                clients,
                resources.get_att(event.on_failure_queue_id, "QueueUrl")
                if event.on_failure_queue_id
                else None,
            )
            for spec in specs.values()
            for event in spec.stream_events
        ]

    def _all(self) -> list[QueuePoller | StreamPoller]:
        return [*self.pollers, *self.stream_pollers]

    def start(self) -> None:
        for poller in self._all():
            poller.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Every poller told to stop, then waited for `timeout` seconds in all (not each: a
        stack of many mappings, each busy with a batch, would outlast SIGTERM's grace). A
        poller still delivering after that is a daemon thread: it ends with the process."""
        for poller in self._all():
            poller.stop()
        deadline = time.monotonic() + timeout
        for poller in self._all():
            if poller.is_alive():
                poller.join(max(0.0, deadline - time.monotonic()))
