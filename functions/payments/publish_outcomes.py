"""PublishOutcomesFunction: the payments table's stream -> the log's queue and the bus.

Each record is a committed change of the payments table; a change of a payment's or a
refund's status is published (cashew.outcomes). A record whose publish fails is
reported as a batch item failure, and Lambda delivers it (and those after it) again. A record
that cannot be read at all is set aside on the failures queue instead of holding the stream.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import outcomes
from cashew.observability import logger, metrics

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def record_handler(record: DynamoDBRecord) -> None:
    try:
        change = outcomes.of_stream_record(record.raw_event)
    except (KeyError, ValueError, TypeError) as exc:  # ValidationError is a ValueError
        outcomes.set_aside(record.raw_event, exc)
        return
    if change is not None:
        outcomes.publish(change)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
