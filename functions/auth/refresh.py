from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.auth import service
from cashew.auth.models import LoginResponse, RefreshRequest
from cashew.http import ERRORS, CashewResolver
from cashew.observability import logger, metrics

aws.prepare("dynamodb", "secretsmanager")

app = CashewResolver()


@app.post(
    "/v1/auth/refresh",
    openapi_extensions={
        ERRORS: {"401": "The refresh token is invalid, expired, revoked or reused"}
    },
)
def refresh(body: RefreshRequest) -> LoginResponse:
    return service.refresh(body.refresh_token.get_secret_value())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
