from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import aws, export
from cashew.export import ExportPage
from cashew.http import CashewResolver, caller
from cashew.observability import logger

aws.prepare("dynamodb")

app = CashewResolver()


@app.get(
    "/v1/users/me/export",
    summary="Everything stored about the caller, paged over sections",
    description=(
        "Profile and settings on every page; payment methods, sessions, payments (as payer,"
        " then as payee), payouts, disputes and log entries, at most"
        f" {export.PAGE_ITEMS} of them a page, with the refunds of the page's payments."
        " Follow `next_cursor` until it is null. Never a password hash, token, TOTP secret"
        " or gateway token."
    ),
)
def export_me(
    cursor: Annotated[str | None, Query(min_length=1, max_length=2048)] = None,
) -> ExportPage:
    return export.export(caller(app), cursor)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
