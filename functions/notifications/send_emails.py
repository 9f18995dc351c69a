import asyncio
import contextvars
import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.notifications import service
from cashew.observability import logger, metrics

aws.prepare("dynamodb", "secretsmanager", "sesv2")

processor = AsyncBatchProcessor(event_type=EventType.SQS)
# The messages of a batch (the mapping's BatchSize, 10) are delivered at once, each in a thread
# of its own: a message spends nearly all its time waiting on SES and DynamoDB, so a batch takes
# about as long as its slowest message instead of the sum of them (`make bench`,
# email_batch). Each message is what it was alone: its claims, its sends, its failure.
BATCH_SIZE = 10
_senders = ThreadPoolExecutor(max_workers=BATCH_SIZE, thread_name_prefix="email")


def _deliver(record: SQSRecord) -> None:
    receives = int(record.attributes.approximate_receive_count or 1)
    service.handle(record.body, receives, record.receipt_handle)


async def record_handler(record: SQSRecord) -> None:
    in_context = functools.partial(contextvars.copy_context().run, _deliver, record)
    await asyncio.get_running_loop().run_in_executor(_senders, in_context)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return async_process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
