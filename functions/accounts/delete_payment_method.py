from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.accounts import payment_methods
from cashew.http import CashewResolver, caller
from cashew.observability import logger, metrics

aws.prepare("dynamodb")

app = CashewResolver()


@app.delete("/v1/users/me/payment-methods/<id>", status_code=204)
def delete_payment_method(id: str) -> Response[None]:
    payment_methods.delete_payment_method(caller(app), id)
    return Response(status_code=204)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
