from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.disputes import service
from cashew.disputes.models import Dispute, DisputeRequest
from cashew.http import CashewResolver, caller
from cashew.observability import logger

aws.prepare("dynamodb")

app = CashewResolver()


@app.post("/v1/transactions/<id>/disputes", status_code=201)
def open_dispute(id: Annotated[str, Path(max_length=64)], body: DisputeRequest) -> Dispute:
    return service.open_dispute(caller(app), id, body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
