"""OPTIONS on every path: the browser's CORS preflight (cashew.cors).

API Gateway (REST) routes a preflight only to an OPTIONS method of the resource itself, so
template.yaml wires OPTIONS of every path of the API here (a unit test keeps that list
complete). An allowed Origin gets 204 with the CORS headers; any other, 204 without them, so
its browser sends nothing more. No authorizer: a browser sends no Authorization header with a
preflight. It reads nothing and writes nothing.
"""

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import cors


def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request_id = (event.get("requestContext") or {}).get("requestId", "")
    return {
        "statusCode": 204,
        "headers": {
            **cors.headers(event, preflight=True),
            "X-Request-Id": request_id,
            "Cache-Control": "no-store",
        },
        "body": "",
        "isBase64Encoded": False,
    }
