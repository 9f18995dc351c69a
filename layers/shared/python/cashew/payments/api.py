"""Payment-service results as HTTP responses."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from cashew.payments.models import PaymentResponse, RefundResponse
from cashew.payments.results import Result


def payment_response(result: Result) -> Response[PaymentResponse]:
    """The stored status and body; replays carry `Idempotent-Replayed: true`."""
    return Response(
        status_code=result.status_code,
        content_type="application/json",
        body=PaymentResponse.model_validate_json(result.body),
        headers={"Idempotent-Replayed": "true"} if result.replayed else None,
    )


def refund_response(result: Result) -> Response[RefundResponse]:
    return Response(
        status_code=result.status_code,
        content_type="application/json",
        body=RefundResponse.model_validate_json(result.body),
        headers={"Idempotent-Replayed": "true"} if result.replayed else None,
    )
