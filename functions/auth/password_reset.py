from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.auth.recovery.models import PasswordResetRequest, ResetRequested
from cashew.http import ERRORS, CashewResolver
from cashew.notifications import security
from cashew.observability import logger, metrics

aws.prepare("dynamodb", "sesv2")

app = CashewResolver()


@app.post(
    "/v1/auth/password-reset",
    status_code=202,
    openapi_extensions={
        ERRORS: {"429": "More than 5 requests an hour for this email; `Retry-After` says when"}
    },
)
def request_password_reset(body: PasswordResetRequest) -> Response[ResetRequested]:
    security.request_password_reset(body.email)
    return Response(status_code=202, content_type="application/json", body=ResetRequested())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
