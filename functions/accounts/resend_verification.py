from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.auth.recovery.models import VerificationRequested
from cashew.http import ERRORS, CashewResolver, caller
from cashew.notifications import security
from cashew.observability import logger, metrics

aws.prepare("dynamodb", "sesv2")

app = CashewResolver()


@app.post(
    "/v1/users/me/verify-email/resend",
    status_code=202,
    openapi_extensions={
        ERRORS: {"429": "More than 5 resends an hour for this user; `Retry-After` says when"}
    },
)
def resend_verification() -> Response[VerificationRequested]:
    """A new verification email (older links stop working); for a verified email, 202 and
    no email."""
    security.resend_verification(caller(app).user_id)
    return Response(status_code=202, content_type="application/json", body=VerificationRequested())


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
