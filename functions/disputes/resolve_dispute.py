from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.disputes import service
from cashew.disputes.models import AdminDispute, ResolveRequest
from cashew.http import ERRORS, CashewResolver, admin
from cashew.observability import logger
from cashew.payments.responses import EMAIL_UNVERIFIED

aws.prepare("dynamodb")

app = CashewResolver(admin_only=True)


@app.post(
    "/v1/admin/disputes/<id>/resolve",
    openapi_extensions={ERRORS: {"403": EMAIL_UNVERIFIED}},
)
def resolve_dispute(id: Annotated[str, Path(max_length=64)], body: ResolveRequest) -> AdminDispute:
    return service.resolve(admin(app), id, body)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
