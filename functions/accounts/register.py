from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.accounts import service
from cashew.accounts.models import RegisterRequest, UserResponse
from cashew.http import CashewResolver
from cashew.notifications import security
from cashew.observability import logger, metrics

aws.prepare("dynamodb", "sesv2")

app = CashewResolver()


@app.post("/v1/users", status_code=201)
def register(body: RegisterRequest) -> Response[UserResponse]:
    user = service.register(body)
    security.email_verification(user.id, user.email, user.name)  # never fails the request
    return Response(status_code=201, content_type="application/json", body=user)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
