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
from cashew.observability import logger, metrics

aws.prepare("sqs", "events")


def publish_batch(records: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The batch item failures (by sequence number) of publishing `records`."""
    changes: list[tuple[str, outcomes.Change]] = []
    for record in records:
        try:
            change = outcomes.of_stream_record(record)
        except (KeyError, ValueError, TypeError) as exc:  # ValidationError is a ValueError
            outcomes.set_aside(record, exc)
            continue
        if change is not None:
            changes.append((record["dynamodb"]["SequenceNumber"], change))
    sent = outcomes.publish([change for _, change in changes])
    return [
        {"itemIdentifier": sequence}
        for (sequence, _), ok in zip(changes, sent, strict=True)
        if not ok
    ]


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return {"batchItemFailures": publish_batch(event["Records"])}
