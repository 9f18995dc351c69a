from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.http import CashewResolver, caller
from cashew.ledger import service
from cashew.ledger.models import EntryList
from cashew.ledger.query_params import Cursor, Limit, Since, StatusFilter, TypeFilter, Until
from cashew.observability import logger

aws.prepare("dynamodb")

app = CashewResolver()


@app.get("/v1/transactions")
def list_transactions(
    *,
    type: TypeFilter = None,
    status: StatusFilter = None,
    since: Since = None,
    until: Until = None,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> EntryList:
    filters = service.Filters(type=type, status=status, since=since, until=until)
    return service.list_transactions(caller(app), filters, limit, cursor)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
