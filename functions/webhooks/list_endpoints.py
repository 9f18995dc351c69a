from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.http import CashewResolver, admin
from cashew.ledger.query_params import Cursor, Limit
from cashew.observability import logger
from cashew.webhooks import endpoints
from cashew.webhooks.models import EndpointList

aws.prepare("dynamodb")

app = CashewResolver(admin_only=True)


@app.get("/v1/admin/webhook-endpoints")
def list_endpoints(limit: Limit = 20, cursor: Cursor = None) -> EndpointList:
    admin(app)
    return endpoints.list_endpoints(limit, cursor)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
