from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import SecretStr

from cashew import aws, clock
from cashew.auth import service
from cashew.auth.models import LoginMfaRequest, LoginResponse
from cashew.http import ERRORS, CashewResolver, client
from cashew.notifications import security
from cashew.observability import logger, metrics

aws.prepare("dynamodb", "kms", "secretsmanager", "sesv2")

app = CashewResolver()


@app.post(
    "/v1/auth/login/mfa",
    openapi_extensions={
        ERRORS: {
            "401": "The code is wrong or was used (`invalid_mfa_code`), or the mfa_token is "
            "invalid, used, expired or killed by 5 wrong codes (`unauthenticated`)",
            "429": "Too many failed attempts for this email; `Retry-After` says when",
        }
    },
)
def login_mfa(body: LoginMfaRequest) -> LoginResponse:
    user_agent, source_ip = client(app)
    signed_in = service.login_mfa(
        body.mfa_token.get_secret_value(),
        body.code.get_secret_value() if isinstance(body.code, SecretStr) else None,
        (
            body.recovery_code.get_secret_value()
            if isinstance(body.recovery_code, SecretStr)
            else None
        ),
        user_agent,
    )
    sign_in = security.SignIn(clock.utcnow_str(), user_agent, source_ip)
    security.security_email(signed_in.user_id, "new_sign_in", sign_in)  # never fails the login
    return signed_in.pair


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
