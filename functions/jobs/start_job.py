from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws
from cashew.http import CashewResolver, admin
from cashew.jobs import service
from cashew.jobs.models import Job, JobRequest
from cashew.observability import logger

aws.prepare("dynamodb", "sqs")

app = CashewResolver(admin_only=True)


@app.post("/v1/admin/jobs", status_code=202)
def start_job(body: JobRequest) -> Response[Job]:
    job = service.start(admin(app), body)
    headers = {"Location": f"/v1/admin/jobs/{job.id}"}
    return Response(status_code=202, content_type="application/json", body=job, headers=headers)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
