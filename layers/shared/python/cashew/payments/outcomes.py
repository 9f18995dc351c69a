"""Publishing payment outcomes to the transaction log's queue."""

from __future__ import annotations

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import BotoCoreError, ClientError

from cashew import aws
from cashew.config import get_settings
from cashew.ledger.models import Outcome
from cashew.observability import logger, metrics
from cashew.payments.models import PaymentResponse, RefundResponse


def outcome_of(payment: PaymentResponse) -> Outcome:
    return Outcome(
        outcome_id=f"{payment.id}:{payment.status}",
        payment_id=payment.id,
        type=payment.type,
        status=payment.status,
        amount=payment.amount_captured or payment.amount,  # a partial capture moves less
        currency=payment.currency,
        payer_id=payment.payer_id,
        payee_id=payment.payee_id,
        failure_code=payment.failure_code,
        occurred_at=payment.updated_at,
    )


def refund_outcome(refund: RefundResponse, payment: PaymentResponse) -> Outcome:
    return Outcome(
        outcome_id=f"{refund.id}:{refund.status}",
        payment_id=payment.id,
        type="refund",
        status=refund.status,
        amount=refund.amount,
        currency=refund.currency,
        payer_id=payment.payer_id,
        payee_id=payment.payee_id,
        occurred_at=refund.created_at,
    )


def publish(payment: PaymentResponse) -> None:
    """Send the payment's outcome to the log's queue. It runs after the money committed, so
    a failure here must not turn the committed payment into an error response: it is logged
    and counted, and a retry of the request (a replay) publishes the outcome again."""
    send(outcome_of(payment))


def send(outcome: Outcome) -> None:
    try:
        aws.sqs().send_message(
            QueueUrl=get_settings().outcomes_queue_url, MessageBody=outcome.model_dump_json()
        )
    except (BotoCoreError, ClientError):
        logger.exception("outcome not published", extra={"outcome_id": outcome.outcome_id})
        metrics.add_metric(name="OutcomePublishFailed", unit=MetricUnit.Count, value=1)
        return
    logger.info("outcome published", extra={"outcome_id": outcome.outcome_id})
