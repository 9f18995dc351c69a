from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.accounts import service
from cashew.accounts.models import UpdateMeRequest, UserResponse
from cashew.http import CashewResolver, caller
from cashew.observability import logger, metrics

aws.prepare("dynamodb")

app = CashewResolver()


@app.patch("/v1/users/me")
def update_me(body: UpdateMeRequest) -> UserResponse:
    return service.update_me(caller(app), body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
