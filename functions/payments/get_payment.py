from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.http import CashewResolver, caller
from cashew.observability import logger
from cashew.payments import after_create
from cashew.payments.models import PaymentResponse

aws.prepare("dynamodb")

app = CashewResolver()


@app.get("/v1/payments/<id>")
def get_payment(id: Annotated[str, Path(max_length=64)]) -> PaymentResponse:
    return after_create.get_payment(caller(app), id)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
