from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.http import ERRORS, CashewResolver, parse_json
from cashew.observability import logger, metrics
from cashew.payments import webhooks
from cashew.payments.models import WebhookReceipt
from cashew.payouts import settle

aws.prepare("dynamodb", "secretsmanager")

app = CashewResolver()


@app.post(
    "/v1/webhooks/gateway",
    openapi_extensions={
        ERRORS: {"400": "The signature header is missing, or does not sign the body"}
    },
)
def gateway_webhook() -> WebhookReceipt:
    event = app.current_event
    payload = (event.decoded_body or "").encode()
    parse_json(payload)  # the gateway's parser may not refuse what the API's refuses (422)
    signature = event.headers.get(webhooks.signature_header())
    webhooks.handle(payload, signature, payouts=settle.webhook_effect)
    return WebhookReceipt(received=True)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
