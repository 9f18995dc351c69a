from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.http import ERRORS, CashewResolver, admin
from cashew.observability import logger
from cashew.webhooks import endpoints
from cashew.webhooks.models import CreatedEndpoint, CreateEndpointRequest

aws.prepare("dynamodb", "kms")

app = CashewResolver(admin_only=True)


@app.post(
    "/v1/admin/webhook-endpoints",
    status_code=201,
    openapi_extensions={ERRORS: {"422": "The URL may not be called, or an unknown event type"}},
)
def create_endpoint(body: CreateEndpointRequest) -> Response[CreatedEndpoint]:
    admin(app)
    return Response(status_code=201, body=endpoints.create(body), content_type="application/json")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
