from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.auth import service
from cashew.auth.models import ChangePasswordRequest
from cashew.http import CashewResolver, caller
from cashew.notifications import security
from cashew.observability import logger

aws.prepare("dynamodb", "sesv2")

app = CashewResolver()


@app.post("/v1/users/me/password", status_code=204)
def change_password(body: ChangePasswordRequest) -> Response[None]:
    who = caller(app)
    service.change_password(
        who, body.current_password.get_secret_value(), body.new_password.get_secret_value()
    )
    security.security_email(who.user_id, "password_changed")  # never fails the request
    return Response(status_code=204)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
