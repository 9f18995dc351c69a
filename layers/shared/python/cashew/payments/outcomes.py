"""Publishing payment outcomes to the transaction log's queue."""

from __future__ import annotations

from cashew import aws
from cashew.config import get_settings
from cashew.ledger.models import Outcome
from cashew.observability import logger
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
    outcome = outcome_of(payment)
    aws.sqs().send_message(
        QueueUrl=get_settings().outcomes_queue_url, MessageBody=outcome.model_dump_json()
    )
    logger.info("outcome published", extra={"payment_id": payment.id, "status": payment.status})
