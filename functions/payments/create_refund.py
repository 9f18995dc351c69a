from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.http import ERRORS, CashewResolver, IdempotencyKey, caller
from cashew.observability import logger, metrics
from cashew.payments import after_create
from cashew.payments.models import RefundRequest, RefundResponse
from cashew.payments.responses import EMAIL_UNVERIFIED, response

aws.prepare("dynamodb")

app = CashewResolver()


@app.post(
    "/v1/payments/<id>/refunds",
    status_code=201,
    openapi_extensions={ERRORS: {"403": EMAIL_UNVERIFIED}},
)
def create_refund(
    id: Annotated[str, Path(max_length=64)], body: RefundRequest, key: IdempotencyKey
) -> Response[RefundResponse]:
    return response(after_create.refund(caller(app), id, body, key))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
