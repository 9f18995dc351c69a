from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.http import CashewResolver, caller
from cashew.ledger import service
from cashew.ledger.models import Entry
from cashew.observability import logger

aws.prepare("dynamodb")

app = CashewResolver()


@app.get("/v1/transactions/<id>")
def get_transaction(id: Annotated[str, Path(max_length=64)]) -> Entry:
    return service.get_transaction(caller(app), id)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
