from typing import Annotated, Any
from urllib.parse import urlencode

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws, clock, reports
from cashew.http import CashewResolver, admin
from cashew.ledger import service
from cashew.ledger.query_params import Cursor, Since, Until
from cashew.observability import logger

aws.prepare("dynamodb")

app = CashewResolver(admin_only=True)
PATH = "/v1/admin/reports/transactions.csv"


@app.get(
    PATH,
    responses={
        200: {
            "description": "One page of the range's entries, newest first, with a header row. "
            'While more follow, `Link: <...>; rel="next"` and `X-Next-Cursor` say where.',
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
def report_csv(
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, Query(ge=1, le=reports.CSV_MAX_PAGE)] = reports.CSV_DEFAULT_PAGE,
    cursor: Cursor = None,
) -> Response[str]:
    admin(app)
    since, until = service.date_range(since, until)  # the next pages keep this very range
    body, next_cursor = reports.csv_page(service.Filters(since=since, until=until), limit, cursor)
    headers = {"Content-Disposition": 'attachment; filename="transactions.csv"'}
    if next_cursor is not None:
        query = {
            "from": clock.rfc3339(since),
            "to": clock.rfc3339(until),
            "limit": str(limit),
            "cursor": next_cursor,
        }
        headers["Link"] = f'<{PATH}?{urlencode(query)}>; rel="next"'
        headers["X-Next-Cursor"] = next_cursor
    return Response(200, content_type="text/csv; charset=utf-8", body=body, headers=headers)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
