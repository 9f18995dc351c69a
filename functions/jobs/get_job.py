from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.http import CashewResolver, admin
from cashew.jobs import service
from cashew.jobs.models import Job
from cashew.observability import logger

aws.prepare("dynamodb")  # S3 signs a finished job's link only: no client for the others

app = CashewResolver(admin_only=True)


@app.get("/v1/admin/jobs/<id>")
def get_job(id: Annotated[str, Path(max_length=64)]) -> Job:
    admin(app)
    return service.get(id)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
