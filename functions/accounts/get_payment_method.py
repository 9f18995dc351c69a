from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.accounts import payment_methods
from cashew.accounts.models import PaymentMethodResponse
from cashew.http import CashewResolver, caller
from cashew.observability import logger

aws.prepare("dynamodb")

app = CashewResolver()


@app.get("/v1/users/me/payment-methods/<id>")
def get_payment_method(id: str) -> PaymentMethodResponse:
    return payment_methods.get_payment_method(caller(app), id)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
