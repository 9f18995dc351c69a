from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.auth import service
from cashew.http import CashewResolver, caller
from cashew.observability import logger

aws.prepare("dynamodb")

app = CashewResolver()


@app.post("/v1/auth/logout", status_code=204)
def logout() -> Response[None]:
    service.logout(caller(app))
    return Response(status_code=204)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
