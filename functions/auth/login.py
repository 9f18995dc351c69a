from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws, clock
from cashew.auth import service
from cashew.auth.models import LoginRequest, LoginResponse
from cashew.http import ERRORS, CashewResolver, client
from cashew.notifications import security
from cashew.observability import logger, metrics

aws.prepare("dynamodb", "secretsmanager", "sesv2")

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
    user_agent, source_ip = client(app)
    signed_in = service.login(body.email, body.password.get_secret_value(), user_agent)
    sign_in = security.SignIn(clock.utcnow_str(), user_agent, source_ip)
    security.security_email(signed_in.user_id, "new_sign_in", sign_in)  # never fails the login
    return signed_in.pair


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
