from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.disputes import service
from cashew.disputes.models import DisputeList
from cashew.http import CashewResolver, caller
from cashew.ledger.query_params import Cursor, Limit
from cashew.observability import logger

aws.prepare("dynamodb")

app = CashewResolver()


@app.get("/v1/disputes")
def list_disputes(
    role: Annotated[Literal["payer", "payee"], Query()] = "payer",
    limit: Limit = 20,
    cursor: Cursor = None,
) -> DisputeList:
    return service.list_disputes(caller(app), role, limit, cursor)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
