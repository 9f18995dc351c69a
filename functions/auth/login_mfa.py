from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import SecretStr

from cashew.auth import service
from cashew.auth.models import LoginMfaRequest, LoginResponse
from cashew.http import ERRORS, CashewResolver
from cashew.observability import logger, metrics

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
    user_agent = app.current_event.headers.get("User-Agent") or ""
    return service.login_mfa(
        body.mfa_token.get_secret_value(),
        body.code.get_secret_value() if isinstance(body.code, SecretStr) else None,
        (
            body.recovery_code.get_secret_value()
            if isinstance(body.recovery_code, SecretStr)
            else None
        ),
        user_agent,
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
