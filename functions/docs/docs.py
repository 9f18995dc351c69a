"""GET /docs: the API's reference page, public.

One self-contained HTML file (Redoc and the OpenAPI document inline, no request to any host)
built by `make web` (web/scripts/build-docs.mjs) into docs.html next to this module, with its
Content-Security-Policy in docs.csp. Read on the first request, then kept: importing this
module (as tools/openapi does) needs neither file.
"""

import functools
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew.http import CashewResolver
from cashew.observability import logger

HERE = Path(__file__).parent

app = CashewResolver()


@functools.cache
def _page() -> tuple[str, str]:
    return (
        (HERE / "docs.html").read_text(encoding="utf-8"),
        (HERE / "docs.csp").read_text(encoding="utf-8").strip(),
    )


@app.get(
    "/docs",
    summary="This API's reference page (HTML), rendering GET /v1/openapi.json",
    responses={
        200: {
            "description": "The page: Redoc rendering this API's OpenAPI document, inline",
            "content": {"text/html": {"schema": {"type": "string"}}},
        }
    },
)
def get_docs_page() -> Response[str]:
    html, csp = _page()
    return Response(
        status_code=200,
        content_type="text/html; charset=utf-8",
        body=html,
        headers={
            # frame-ancestors only works as a header, not in the page's own <meta>
            "Content-Security-Policy": f"{csp}; frame-ancestors 'none'",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "public, max-age=300",
        },
    )


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
