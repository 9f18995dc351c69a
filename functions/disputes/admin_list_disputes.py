from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.disputes import service
from cashew.disputes.models import AdminDisputeList, DisputeStatus
from cashew.http import CashewResolver, admin
from cashew.ledger.query_params import Cursor, Limit
from cashew.observability import logger

aws.prepare("dynamodb")

app = CashewResolver(admin_only=True)


@app.get("/v1/admin/disputes")
def admin_list_disputes(
    status: Annotated[DisputeStatus | None, Query()] = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> AdminDisputeList:
    admin(app)
    return service.admin_list(status, limit, cursor)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
