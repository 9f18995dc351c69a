from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.auth.recovery import verification
from cashew.auth.recovery.models import VerifyEmailRequest
from cashew.http import ERRORS, CashewResolver
from cashew.observability import logger, metrics

aws.prepare("dynamodb")

app = CashewResolver()


@app.post(
    "/v1/users/verify-email",
    status_code=204,
    openapi_extensions={ERRORS: {"400": "The token is unknown, used, voided or expired"}},
)
def verify_email(body: VerifyEmailRequest) -> Response[None]:
    verification.verify(body.token.get_secret_value())
    return Response(status_code=204)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
