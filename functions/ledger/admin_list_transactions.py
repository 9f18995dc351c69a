from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.http import CashewResolver, admin
from cashew.ledger import service
from cashew.ledger.models import EntryList
from cashew.ledger.query_params import Cursor, Limit, Since, StatusFilter, TypeFilter, Until
from cashew.observability import logger

aws.prepare("dynamodb")

app = CashewResolver(admin_only=True)


@app.get("/v1/admin/transactions")
def admin_list_transactions(
    *,
    user_id: Annotated[str | None, Query(pattern=r"^usr_[0-9A-Z]{26}$")] = None,
    type: TypeFilter = None,
    status: StatusFilter = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> EntryList:
    admin(app)
    filters = service.Filters(type=type, status=status, since=since, until=until)
    return service.admin_transactions(user_id, filters, limit, cursor)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
