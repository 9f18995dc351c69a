from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.http import CashewResolver, admin
from cashew.observability import logger
from cashew.webhooks import endpoints
from cashew.webhooks.models import RotatedSecret

aws.prepare("dynamodb", "kms")

app = CashewResolver(admin_only=True)


@app.post("/v1/admin/webhook-endpoints/<id>/rotate-secret")
def rotate_secret(id: Annotated[str, Path(max_length=64)]) -> RotatedSecret:
    admin(app)
    return endpoints.rotate_secret(id)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
