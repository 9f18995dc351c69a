from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import reports
from cashew.http import CashewResolver, admin
from cashew.observability import logger

# No aws.prepare: at 2,048 MB an invocation has 1.16 vCPU's share, and `make bench` measures
# the lazy cold start as fast as the eager one (403 against 409 ms).
app = CashewResolver(admin_only=True)


@app.get("/v1/admin/audit/verify")
def audit_verify() -> reports.Audit:
    admin(app)
    return reports.audit()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
