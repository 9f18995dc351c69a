from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.auth.recovery import service
from cashew.auth.recovery.models import PasswordResetConfirmRequest
from cashew.http import ERRORS, CashewResolver
from cashew.notifications import security
from cashew.observability import logger, metrics

aws.prepare("dynamodb", "sesv2")

app = CashewResolver()


@app.post(
    "/v1/auth/password-reset/confirm",
    status_code=204,
    openapi_extensions={
        ERRORS: {
            "400": "The token is unknown, used, voided or expired",
            "409": "The password kept changing while the reset was written; try again",
        }
    },
)
def confirm_password_reset(body: PasswordResetConfirmRequest) -> Response[None]:
    user_id = service.confirm_reset(
        body.token.get_secret_value(), body.new_password.get_secret_value()
    )
    security.security_email(user_id, "password_reset")
    return Response(status_code=204)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
