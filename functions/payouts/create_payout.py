from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.http import ERRORS, CashewResolver, IdempotencyKey, caller
from cashew.observability import logger, metrics
from cashew.payments.responses import EMAIL_UNVERIFIED, response
from cashew.payouts import create
from cashew.payouts.models import PayoutRequest, PayoutResponse

aws.prepare("dynamodb", "kms", "secretsmanager")

app = CashewResolver()


@app.post(
    "/v1/payouts",
    status_code=201,
    openapi_extensions={ERRORS: {"403": EMAIL_UNVERIFIED}},
)
def create_payout(body: PayoutRequest, key: IdempotencyKey) -> Response[PayoutResponse]:
    return response(create.create_payout(caller(app), body, key))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
