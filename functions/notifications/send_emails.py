import contextvars
from concurrent.futures import Future, ThreadPoolExecutor, wait
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
from cashew.notifications import service
from cashew.observability import logger, metrics

aws.prepare("dynamodb", "secretsmanager", "sesv2")

# The messages of a batch (the mapping's BatchSize, 10) are delivered at once, each in a thread
# of its own: a message spends nearly all its time waiting on SES and DynamoDB, so a batch takes
# about as long as its slowest message instead of the sum of them (`python -m bench.emails`).
# Each message is what it was alone: its claims, its sends, its own failure in the batch's
# partial response (Powertools' processor reports each record's outcome, in order). The
# processor is the invocation's own: it holds the batch's outcomes, and the local stack and the
# tests may run two invocations of one module at once (two environments, in Lambda).
BATCH_SIZE = 10
_senders = ThreadPoolExecutor(max_workers=BATCH_SIZE, thread_name_prefix="email")


def _deliver(raw: dict[str, Any]) -> None:
    record = SQSRecord(raw)
    receives = int(record.attributes.approximate_receive_count or 1)
    service.handle(record.body, receives, record.receipt_handle)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # This invocation's deliveries, by record (the same message twice in a batch is two; the
    # same record object twice is one delivery, reported for each).
    deliveries: dict[int, Future[None]] = {}
    for raw in event.get("Records") or []:
        if isinstance(raw, dict) and id(raw) not in deliveries:
            deliveries[id(raw)] = _senders.submit(contextvars.copy_context().run, _deliver, raw)

    def outcome(record: SQSRecord) -> None:
        deliveries[id(record.raw_event)].result()  # its delivery's own error, if any

    try:
        return process_partial_response(
            event=event,
            record_handler=outcome,
            processor=BatchProcessor(event_type=EventType.SQS),
            context=context,
        )
    finally:  # no delivery outlives its invocation (its metrics, its SES call)
        wait(deliveries.values())
