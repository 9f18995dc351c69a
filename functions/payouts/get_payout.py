from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.http import CashewResolver, caller
from cashew.observability import logger
from cashew.payouts import create
from cashew.payouts.models import PayoutResponse

aws.prepare("dynamodb")

app = CashewResolver()


@app.get("/v1/payouts/<id>")
def get_payout(id: Annotated[str, Path(max_length=64)]) -> PayoutResponse:
    return create.get_payout(caller(app), id)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
