from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.auth import receipts
from cashew.http import CashewResolver, caller
from cashew.ledger.models import Receipt
from cashew.observability import logger

aws.prepare("dynamodb", "secretsmanager")

app = CashewResolver()


@app.get("/v1/transactions/<id>/receipt")
def get_receipt(id: Annotated[str, Path(max_length=64)]) -> Receipt:
    return receipts.issue_receipt(caller(app), id)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
