"""Publishing payment outcomes to the transaction log's queue."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from cashew import aws
from cashew.config import get_settings
from cashew.ledger.models import Outcome
from cashew.observability import logger, metrics
from cashew.payments.models import PaymentResponse


def outcome_of(payment: PaymentResponse) -> Outcome:
    return Outcome(
        outcome_id=f"{payment.id}:{payment.status}",
        payment_id=payment.id,
        type=payment.type,
        status=payment.status,
        amount=payment.amount,
        currency=payment.currency,
        payer_id=payment.payer_id,
        payee_id=payment.payee_id,
        failure_code=payment.failure_code,
        occurred_at=payment.updated_at,
    )


def publish(payment: PaymentResponse) -> None:
    """Send the payment's outcome to the log's queue. It runs after the money committed, so
    a failure here must not turn the committed payment into an error response: it is logged
    and counted, and a retry of the request (a replay) publishes the outcome again."""
    outcome = outcome_of(payment)
    try:
        aws.sqs().send_message(
            QueueUrl=get_settings().outcomes_queue_url, MessageBody=outcome.model_dump_json()
        )
    except (BotoCoreError, ClientError):
        logger.exception("outcome not published", extra={"payment_id": payment.id})
        metrics.add_metric(name="OutcomePublishFailed", unit=MetricUnit.Count, value=1)
        return
    logger.info("outcome published", extra={"payment_id": payment.id, "status": payment.status})
