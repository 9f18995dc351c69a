from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.auth import mfa
from cashew.auth.models import MfaDisableRequest
from cashew.http import ERRORS, CashewResolver, caller
from cashew.notifications import security
from cashew.observability import logger

aws.prepare("dynamodb", "kms", "sesv2")

app = CashewResolver()


@app.delete(
    "/v1/users/me/mfa/totp",
    status_code=204,
    openapi_extensions={
        ERRORS: {
            "401": "Wrong password (`invalid_credentials`) or code (`invalid_mfa_code`)",
            "409": "Multi-factor authentication is not enabled",
            "429": "Too many failed attempts for this email; `Retry-After` says when",
        }
    },
)
def disable(body: MfaDisableRequest) -> Response[None]:
    who = caller(app)
    mfa.disable(who, body.password.get_secret_value(), body.code.get_secret_value())
    security.security_email(who.user_id, "mfa_disabled")  # never fails the request
    return Response(status_code=204)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
