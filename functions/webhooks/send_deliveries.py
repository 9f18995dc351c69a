"""The dispatcher's sender: one delivery per message of WebhookDeliveriesQueue, one attempt
each, so a slow or failing endpoint holds up no other's deliveries."""

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.observability import logger, metrics
from cashew.webhooks import dispatch

aws.prepare("dynamodb", "kms", "sqs")

processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    dispatch.send(str(json.loads(record.body)["delivery_id"]))


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
