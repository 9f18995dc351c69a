from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.http import ERRORS, CashewResolver, IdempotencyKey, caller
from cashew.observability import logger, metrics
from cashew.payments import create
from cashew.payments.models import PaymentResponse, TopUpRequest
from cashew.payments.responses import EMAIL_UNVERIFIED, response

aws.prepare("dynamodb", "kms", "secretsmanager")

app = CashewResolver()


@app.post(
    "/v1/top-ups",
    status_code=201,
    openapi_extensions={ERRORS: {"403": EMAIL_UNVERIFIED}},
)
def create_top_up(body: TopUpRequest, key: IdempotencyKey) -> Response[PaymentResponse]:
    return response(create.top_up(caller(app), body, key))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
