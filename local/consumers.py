"""The SQS event source mappings of the template, as Lambda's pollers run them.

One thread per `SQS` event: it receives up to BatchSize messages (waiting up to
MaximumBatchingWindowInSeconds to fill a batch), invokes the function with a real SQS event,
and deletes what succeeded: with ReportBatchItemFailures, every record not listed in the
response's batchItemFailures; without it, the whole batch when the invocation succeeded. A
failed invocation deletes nothing. What is not deleted is received again once its visibility
timeout is over, and after the queue's maxReceiveCount receives the endpoint moves it to the
dead-letter queue (set CASHEW_LOCAL_VISIBILITY_TIMEOUT to see that happen in seconds).
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from local.runtime import Invocation
from local.template import REGION, ClientFactory, FunctionSpec, Resources, SqsEvent

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


class QueuePoller(threading.Thread):
    """The event source mapping `event`, until `stop()`."""

    def __init__(
        self,
        event: SqsEvent,
        queue_url: str,
        queue_arn: str,
        invoke: Callable[[str, Any], Invocation],
        clients: ClientFactory,
    ) -> None:
        super().__init__(name=f"sqs:{event.queue_id}->{event.function_id}", daemon=True)
        self.event, self._url, self._arn, self._invoke = event, queue_url, queue_arn, invoke
        self._sqs = clients("sqs")
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                batch = self._collect()
                if batch:
                    self._process(batch)
            except Exception:  # noqa: BLE001 - the mapping keeps polling, as Lambda's does
                _log.exception("polling %s failed", self.event.queue_id)
                self._stopping.wait(1)

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


class Consumers:
    """Every SQS event source mapping of `specs`, started and stopped together."""

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

    def start(self) -> None:
        for poller in self.pollers:
            poller.start()

    def stop(self, timeout: float = 5.0) -> None:
        for poller in self.pollers:
            poller.stop()
        for poller in self.pollers:
            if poller.is_alive():
                poller.join(timeout)
