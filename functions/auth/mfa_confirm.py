from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.auth import mfa
from cashew.auth.models import MfaConfirmRequest, RecoveryCodes
from cashew.http import ERRORS, CashewResolver, caller
from cashew.notifications import security
from cashew.observability import logger

aws.prepare("dynamodb", "kms", "sesv2")

app = CashewResolver()


@app.post(
    "/v1/users/me/mfa/totp/confirm",
    openapi_extensions={
        ERRORS: {
            "401": "The code is wrong (`invalid_mfa_code`)",
            "409": "No enrolment is pending",
            "429": "Too many failed attempts for this email; `Retry-After` says when",
        }
    },
)
def confirm(body: MfaConfirmRequest) -> RecoveryCodes:
    """Turn MFA on with a first code; the 10 recovery codes are shown this once."""
    who = caller(app)
    codes = mfa.confirm(who, body.code.get_secret_value())
    security.security_email(who.user_id, "mfa_enabled")  # never fails the request
    return RecoveryCodes(recovery_codes=codes)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
