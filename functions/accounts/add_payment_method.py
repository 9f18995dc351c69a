from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.accounts import payment_methods
from cashew.accounts.models import AddPaymentMethodRequest, PaymentMethodResponse
from cashew.http import CashewResolver, caller
from cashew.observability import logger, metrics

aws.prepare("dynamodb", "kms", "secretsmanager")

app = CashewResolver()


@app.post("/v1/users/me/payment-methods", status_code=201)
def add_payment_method(body: AddPaymentMethodRequest) -> Response[PaymentMethodResponse]:
    method = payment_methods.add_payment_method(caller(app), body)
    return Response(status_code=201, content_type="application/json", body=method)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
