from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.http import CashewResolver, admin
from cashew.ledger.query_params import Cursor, Limit
from cashew.observability import logger
from cashew.webhooks import endpoints
from cashew.webhooks.models import DeliveryList, DeliveryStatus

aws.prepare("dynamodb")

app = CashewResolver(admin_only=True)


@app.get("/v1/admin/webhook-endpoints/<id>/deliveries")
def list_deliveries(
    id: Annotated[str, Path(max_length=64)],
    status: Annotated[DeliveryStatus | None, Query()] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> DeliveryList:
    admin(app)
    return endpoints.deliveries(id, status, limit, cursor)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
