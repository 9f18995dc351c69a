from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew.http import CashewResolver
from cashew.observability import logger
from cashew.system import HealthResponse

app = CashewResolver()


@app.get("/v1/health")
def get_health() -> HealthResponse:
    return HealthResponse(status="ok")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
