"""GET /v1/openapi.json: the OpenAPI document of the whole API.

The document is generated from every handler at build time (`make openapi`, that is
`python -m tools.openapi`) into openapi.json next to this module, and read once here at cold
start: this function imports no other handler. Never edit openapi.json by hand.
"""

from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew.http import CashewResolver
from cashew.observability import logger

DOCUMENT = (Path(__file__).parent / "openapi.json").read_text(encoding="utf-8")

app = CashewResolver()


@app.get(
    "/v1/openapi.json",
    summary="The OpenAPI 3.1 document of this API",
    responses={
        200: {
            "description": "This document",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
def get_openapi_document() -> Response[str]:
    return Response(status_code=200, content_type="application/json", body=DOCUMENT)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
