from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew.http import CashewResolver
from cashew.observability import logger, metrics
from cashew.payments import webhooks
from cashew.payments.models import WebhookReceipt

app = CashewResolver()


@app.post("/v1/webhooks/gateway")
def gateway_webhook() -> WebhookReceipt:
    event = app.current_event
    payload = (event.decoded_body or "").encode()
    webhooks.handle(payload, event.headers.get(webhooks.signature_header()))
    return WebhookReceipt(received=True)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
