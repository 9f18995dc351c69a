from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew.auth import service
from cashew.auth.models import LoginRequest, LoginResponse
from cashew.http import ERRORS, CashewResolver
from cashew.observability import logger, metrics

app = CashewResolver()


@app.post(
    "/v1/auth/login",
    openapi_extensions={
        ERRORS: {
            "401": "Wrong email or password",
            "429": "Too many failed attempts for this email; `Retry-After` says when",
        }
    },
)
def login(body: LoginRequest) -> LoginResponse:
    user_agent = app.current_event.headers.get("User-Agent") or ""
    return service.login(body.email, body.password.get_secret_value(), user_agent)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
