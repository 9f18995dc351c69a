"""PublishOutcomesFunction: the payments table's stream -> the log's queue and the bus.

Each record is a committed change of the payments (or disputes) table; a change of status is
published (cashew.outcomes), the whole batch at once: SendMessageBatch and PutEvents take 10
changes per request. A record whose publish fails is reported as a batch item failure, and
Lambda delivers it (and those after it) again. A record that cannot be read at all is set
aside on the failures queue instead of holding the stream.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws, outcomes
from cashew.dynamo import UNDESERIALIZABLE as UNREADABLE
from cashew.observability import logger, metrics

aws.prepare("sqs", "events")


def publish_batch(records: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The batch item failures (by sequence number) of publishing `records`. A record that
    cannot be read is set aside; if even that fails, it is the batch's failure, and what
    came before it is still published (Lambda delivers again from the failed record on)."""
    changes: list[tuple[str, outcomes.Change]] = []
    failed: list[str] = []
    for record in records:
        sequence = str(record.get("dynamodb", {}).get("SequenceNumber", ""))
        try:
            change = outcomes.of_stream_record(record)
        except (*UNREADABLE, KeyError) as exc:  # ValidationError is a ValueError
            if not _set_aside(record, exc):
                failed.append(sequence)
                break
            continue
        if change is not None:
            changes.append((sequence, change))
    sent = outcomes.publish([change for _, change in changes])
    failed[:0] = [sequence for (sequence, _), ok in zip(changes, sent, strict=True) if not ok]
    return [{"itemIdentifier": sequence} for sequence in failed]


def _set_aside(record: dict[str, Any], error: Exception) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415 - boto3 is loaded

    try:
        outcomes.set_aside(record, error)
    except (BotoCoreError, ClientError):
        logger.exception("an unreadable change could not be set aside; its record is retried")
        return False
    return True


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return {"batchItemFailures": publish_batch(event["Records"])}
