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
from cashew.jobs import service
from cashew.observability import logger

aws.prepare("dynamodb", "s3", "sqs")

processor = BatchProcessor(event_type=EventType.SQS)


@logger.inject_lambda_context
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    def record_handler(record: SQSRecord) -> None:
        job_id = str(json.loads(record.body)["job_id"])
        receives = int(record.attributes.approximate_receive_count or 1)
        service.run(job_id, context.get_remaining_time_in_millis, receives)

    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
