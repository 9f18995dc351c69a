from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.http import CashewResolver, admin
from cashew.observability import logger
from cashew.webhooks import endpoints
from cashew.webhooks.models import RetryAccepted

aws.prepare("dynamodb", "sqs")

app = CashewResolver(admin_only=True)


@app.post(
    "/v1/admin/webhook-deliveries/<id>/retry",
    status_code=202,
)
def retry_delivery(id: Annotated[str, Path(max_length=64)]) -> Response[RetryAccepted]:
    admin(app)
    return Response(status_code=202, body=endpoints.retry(id), content_type="application/json")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
