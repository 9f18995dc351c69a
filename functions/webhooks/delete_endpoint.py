from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.http import CashewResolver, admin
from cashew.observability import logger
from cashew.webhooks import endpoints

aws.prepare("dynamodb")

app = CashewResolver(admin_only=True)


@app.delete("/v1/admin/webhook-endpoints/<id>", status_code=204)
def delete_endpoint(id: Annotated[str, Path(max_length=64)]) -> Response[None]:
    admin(app)
    endpoints.delete(id)
    return Response(status_code=204)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
