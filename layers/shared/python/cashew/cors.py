"""CORS: which browser origins may read the API's answers (`CASHEW_CORS_ORIGINS`).

The setting is a comma-separated list of origins, each `http(s)://host[:port]` exactly as a
browser sends it in `Origin` (lower case, no path, no trailing slash); never `*` or `null`.
Empty (the default): no CORS header at all, so only same-origin pages read answers.
An allowed origin is echoed in `Access-Control-Allow-Origin` with `Vary: Origin`; any other
gets no CORS header, so its browser withholds the answer. No credentials (the API takes
bearer tokens, never cookies). API Gateway's own gateway responses (an authorizer's 401, an
unrouted path's 404, a throttled 429) carry only static headers, so they carry no CORS header
either: a browser on another origin sees them as network errors (the web client then refreshes
its token and retries once).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools.event_handler import CORSConfig

from cashew.config import parse_origins

VARIABLE = "CASHEW_CORS_ORIGINS"
ALLOW_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key"]
EXPOSE_HEADERS = ["X-Request-Id", "Idempotent-Replayed", "Retry-After", "Link"]
ALLOW_METHODS = "DELETE,GET,OPTIONS,PATCH,POST,PUT"
MAX_AGE = 600


@functools.cache
def config(value: str | None = None) -> CORSConfig | None:
    """Powertools' CORS configuration for the allowed origins, or None when there are none."""
    origins = parse_origins(os.environ.get(VARIABLE, "") if value is None else value)
    if not origins:
        return None
    return CORSConfig(
        allow_origin=origins[0],
        extra_origins=list(origins[1:]),
        allow_headers=ALLOW_HEADERS,
        expose_headers=EXPOSE_HEADERS,
        max_age=MAX_AGE,
        allow_credentials=False,
    )


def request_origin(event: Mapping[str, Any]) -> str | None:
    """The `Origin` header of an API Gateway proxy event, if any."""
    for name, value in (event.get("headers") or {}).items():
        if name.lower() == "origin" and isinstance(value, str):
            return value
    return None


def headers(event: Mapping[str, Any], *, preflight: bool = False) -> dict[str, str]:
    """The CORS headers the answer to `event` carries: none without an allowed Origin."""
    cors = config()
    origin = request_origin(event)
    if cors is None:
        return {}
    allowed = cors.to_dict(origin) if origin else {}  # parse_origins refuses `*`
    if allowed and preflight:
        allowed["Access-Control-Allow-Methods"] = ALLOW_METHODS
    elif allowed:
        # Allow-Headers and Max-Age are for preflights only
        allowed.pop("Access-Control-Allow-Headers", None)
        allowed.pop("Access-Control-Max-Age", None)
    return {**allowed, "Vary": "Origin"}
