from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws, reports
from cashew.http import CashewResolver, admin
from cashew.ledger import service
from cashew.ledger.query_params import Since, Until
from cashew.observability import logger

aws.prepare("dynamodb")

app = CashewResolver(admin_only=True)


@app.get("/v1/admin/reports/summary")
def report_summary(since: Since = None, until: Until = None) -> reports.Summary:
    admin(app)
    return reports.summary(service.Filters(since=since, until=until))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
