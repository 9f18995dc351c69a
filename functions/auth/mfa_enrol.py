from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.auth import mfa
from cashew.auth.models import MfaEnrolRequest, MfaEnrolResponse
from cashew.http import ERRORS, CashewResolver, caller
from cashew.observability import logger

aws.prepare("dynamodb", "kms")

app = CashewResolver()


@app.post(
    "/v1/users/me/mfa/totp",
    openapi_extensions={
        ERRORS: {
            "401": "Wrong password (counted toward the lockout)",
            "409": "Multi-factor authentication is already enabled",
            "429": "Too many failed attempts for this email; `Retry-After` says when",
        }
    },
)
def enrol(body: MfaEnrolRequest) -> MfaEnrolResponse:
    """Start a TOTP enrolment: the secret is shown this once (nothing changes at login until
    it is confirmed)."""
    enrolment = mfa.enrol(caller(app), body.password.get_secret_value())
    return MfaEnrolResponse(secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
