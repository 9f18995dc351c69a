"""HTTP edge shared by every API function: the resolver, problem+json errors, the caller.

Domain errors are translated to HTTP here and nowhere else.
"""

from __future__ import annotations

import json
from email.message import Message
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.exceptions import NotFoundError as RouteNotFound
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Header
from aws_lambda_powertools.utilities.typing import LambdaContext

from cashew import cors
from cashew.errors import (
    CashewError,
    ForbiddenError,
    IdempotencyKeyMissingError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    UnauthenticatedError,
    UnsupportedMediaTypeError,
)
from cashew.identity import Caller
from cashew.observability import logger

MAX_BODY_BYTES = 64 * 1024
PROBLEM_JSON = "application/problem+json"
JSON_MEDIA_TYPE = "application/json"
# Every API response is private to its caller, and some carry tokens: never cached.
NO_STORE_HEADERS = {"Cache-Control": "no-store", "Pragma": "no-cache"}
ERROR_TYPE_BASE = "https://cashew.dev/errors/"
ERRORS = "x-cashew-errors"
"""The route's `openapi_extensions` key for the errors that only its logic gives, by status
(`{"401": "Wrong email or password"}`); the OpenAPI generator turns them into responses."""


class CashewResolver(APIGatewayRestResolver):
    """The REST resolver with Cashew's edge rules: body limit, request id, problem+json."""

    def __init__(self, *, admin_only: bool = False) -> None:
        """`admin_only`: every route is for admins; anyone else gets 403 before the request
        is even validated (so no parameter or schema of an admin route leaks)."""
        super().__init__(enable_validation=True, json_body_deserializer=parse_json)
        self.admin_only = admin_only
        self.exception_handler(CashewError)(self._domain_error)
        self.exception_handler(RequestValidationError)(self._validation_error)
        self.exception_handler(RequestUnsupportedContentType)(self._unsupported_media_type)
        self.exception_handler(RouteNotFound)(self._route_not_found)
        self.exception_handler(Exception)(self._unexpected_error)

    def resolve(self, event: Any, context: LambdaContext) -> dict[str, Any]:
        request_id = (event.get("requestContext") or {}).get("requestId", "")
        original = event
        body = event.get("body") or ""
        refusal = self._refusal(event)
        if refusal is None:
            event, refusal = _with_json_media_type(event)
        if len(body.encode() if isinstance(body, str) else body) > MAX_BODY_BYTES:
            refusal = PayloadTooLargeError(f"request bodies are limited to {MAX_BODY_BYTES} bytes")
        if refusal is not None:
            response: dict[str, Any] = {
                "statusCode": refusal.status,
                "headers": {"Content-Type": PROBLEM_JSON},
                "body": _problem_body(refusal, request_id),
                "isBase64Encoded": False,
            }
        else:
            response = super().resolve(event, context)
        added = {"X-Request-Id": request_id, **cors.headers(original)}
        present = {name.lower() for name in response.get("headers") or {}}
        present |= {name.lower() for name in response.get("multiValueHeaders") or {}}
        if "cache-control" not in present:  # a handler may allow caching of public documents
            added.update(NO_STORE_HEADERS)
        for name, value in added.items():
            if "multiValueHeaders" in response:
                response["multiValueHeaders"][name] = [value]
            else:
                response.setdefault("headers", {})[name] = value
        return response

    def _refusal(self, event: Any) -> CashewError | None:
        if not self.admin_only:
            return None
        context = (event.get("requestContext") or {}).get("authorizer") or {}
        if not context.get("user_id"):
            return UnauthenticatedError("a valid access token is required")
        if context.get("role") != "admin":
            return ForbiddenError("this operation is for admins only")
        return None

    @property
    def request_id(self) -> str:
        return str(self.current_event.request_context.request_id)

    def _domain_error(self, error: CashewError) -> Response[str]:
        if error.status >= 500:
            logger.error("request failed", extra={"code": error.code})
        return _problem_response(error, self.request_id)

    def _validation_error(self, error: RequestValidationError) -> Response[str]:
        if any(
            tuple(e.get("loc", ())) == ("header", IDEMPOTENCY_HEADER)
            and (e.get("type") == "missing" or e.get("input") == "")
            for e in error.errors()
        ):
            required = IdempotencyKeyMissingError("the Idempotency-Key header is required")
            return _problem_response(required, self.request_id)
        return _problem_response(_describe_validation(error), self.request_id)

    def _unsupported_media_type(self, _: RequestUnsupportedContentType) -> Response[str]:
        error = UnsupportedMediaTypeError("request bodies must be application/json")
        return _problem_response(error, self.request_id)

    def _route_not_found(self, _: RouteNotFound) -> Response[str]:
        return _problem_response(NotFoundError("no such resource"), self.request_id)

    def _unexpected_error(self, _: Exception) -> Response[str]:
        logger.exception("unhandled error")
        return _problem_response(CashewError("an unexpected error occurred"), self.request_id)


def _problem_body(error: CashewError, request_id: str) -> str:
    body: dict[str, Any] = {
        "type": ERROR_TYPE_BASE + error.code,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "code": error.code,
        "request_id": request_id,
    }
    if error.errors:
        body["errors"] = error.errors
    body.update({k: v for k, v in error.extensions.items() if k not in body})
    return json.dumps(body, separators=(",", ":"))


def _problem_response(error: CashewError, request_id: str) -> Response[str]:
    return Response(
        status_code=error.status,
        content_type=PROBLEM_JSON,
        body=_problem_body(error, request_id),
        headers=error.headers,
    )


def media_type(value: str) -> tuple[str, dict[str, str]]:
    """The media type of a Content-Type value, lower case, and its parameters (names lower
    case), parsed as RFC 9110 says (the standard library's MIME parser: quoting, spaces,
    case). A value that is not `type/subtype` parses as `text/plain`, which is not JSON."""
    message = Message()
    message["Content-Type"] = value
    params = message.get_params(header="Content-Type", failobj=[]) or []
    return message.get_content_type(), {name.lower(): str(v) for name, v in params[1:]}


def is_json_media_type(value: str) -> bool:
    """`application/json` exactly (not `application/jsonx`, `application/json-patch+json` or
    `text/json`), compared case-insensitively, with no charset but UTF-8."""
    kind, params = media_type(value)
    return kind == JSON_MEDIA_TYPE and params.get("charset", "utf-8").lower() == "utf-8"


def _with_json_media_type(event: Any) -> tuple[Any, CashewError | None]:
    """The event with its Content-Type normalised to `application/json`, or a 415.

    A request with a body must declare it `application/json` (an absent Content-Type is
    taken as JSON); the Content-Type of a request without a body is ignored. Powertools would
    otherwise parse forms and multipart bodies (a multipart type without a boundary raises
    in Powertools: a 500), and compares `application/json` as a case-sensitive prefix."""
    headers = dict(event.get("headers") or {})
    multi = dict(event.get("multiValueHeaders") or {})
    names = [name for name in (*headers, *multi) if name.lower() == "content-type"]
    if not names:
        return event, None
    values = [headers[name] for name in names if name in headers]
    values += [v for name in names if name in multi for v in multi[name] or []]
    for name in names:
        headers.pop(name, None)
        multi.pop(name, None)
    if event.get("body"):
        if not all(isinstance(v, str) and is_json_media_type(v) for v in values):
            return event, UnsupportedMediaTypeError(
                "request bodies must be application/json (UTF-8)"
            )
        headers["Content-Type"] = JSON_MEDIA_TYPE
        multi["Content-Type"] = [JSON_MEDIA_TYPE]
    normalised = {**event, "headers": headers}
    if "multiValueHeaders" in event:
        normalised["multiValueHeaders"] = multi
    return normalised, None


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object, refused when a key appears twice: parsers disagree on which one wins
    (the first, the last, an error), so a duplicated key is never guessed."""
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            field = _field_name(key)
            raise InvalidRequestError(
                f"{field} appears more than once",
                errors=[{"field": field, "message": "appears more than once"}],
            )
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise InvalidRequestError(
        f"{name} is not valid JSON", errors=[{"field": "body", "message": "is not valid JSON"}]
    )


def parse_json(body: str | bytes) -> Any:
    """json.loads without NaN/Infinity or duplicated keys; any unparsable body (including
    integers past Python's digit limit, a plain ValueError, and nesting too deep to parse)
    is a 422, never a 500."""
    try:
        return json.loads(body, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequestError(
            "body is not valid JSON", errors=[{"field": "body", "message": "is not valid JSON"}]
        ) from exc


# Messages by pydantic error type. They are ours, never pydantic's `msg`, which can quote
# the client's input (a card number sent in the wrong field, say).
_MESSAGES = {
    "extra_forbidden": "is not a field of this operation",
    "missing": "is required",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "bool_type": "must be a boolean",
    "bool_parsing": "must be a boolean",
    "string_type": "must be a string",
    "string_pattern_mismatch": "has an invalid format",
    "json_invalid": "is not valid JSON",
    "model_attributes_type": "must be a JSON object",
    "model_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "list_type": "must be a JSON array",
    "union_tag_invalid": "has an unknown type",
    "union_tag_not_found": "needs a type",
}


def _field_name(part: object) -> str:
    """A location part as shown to the client; a client-chosen name that is not a plain
    identifier (it could be anything, a card number included) is not echoed."""
    text = str(part)
    plain = text.replace("-", "_")
    if isinstance(part, int) or (plain.isidentifier() and plain.isascii() and len(text) <= 64):
        return text
    return "<unknown>"


def _describe_validation(error: RequestValidationError) -> InvalidRequestError:
    """Field-level messages without echoing input values (which may be card numbers)."""
    details = []
    for item in error.errors():
        loc = [_field_name(p) for p in item.get("loc", ())]
        if loc[:1] == ["header"]:  # as HTTP spells it: Idempotency-Key
            loc = ["-".join(word.capitalize() for word in part.split("-")) for part in loc[1:]]
        elif loc and loc[0] in ("body", "query", "path"):
            loc = loc[1:]
        field = ".".join(loc) or "body"
        ctx = item.get("ctx") or {}
        kind = item.get("type", "")
        if kind in _MESSAGES:
            message = _MESSAGES[kind]
        elif kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
            message = f"must be {kind.replace('_', ' ')} {ctx.get(next(iter(ctx), ''), '')}"
        elif kind in ("string_too_short", "string_too_long"):
            bound = ctx.get("min_length", ctx.get("max_length"))
            message = (
                f"must be {'at least' if kind.endswith('short') else 'at most'} {bound} characters"
            )
        elif kind == "literal_error":
            message = f"must be one of {ctx.get('expected', 'the allowed values')}"
        elif kind == "value_error":  # raised by our own validators, with our own messages
            message = str(ctx.get("error", "is invalid"))
        else:
            message = "is invalid"
        details.append({"field": field, "message": message})
    first = details[0] if details else {"field": "body", "message": "is invalid"}
    return InvalidRequestError(f"{first['field']} {first['message']}", errors=details)


def caller(app: APIGatewayRestResolver) -> Caller:
    """The authenticated caller from the authorizer context; 401 if there is none."""
    context = app.current_event.request_context.authorizer.raw_event or {}
    user_id, session_id = context.get("user_id"), context.get("session_id")
    role = context.get("role")
    if not user_id or not session_id or role not in ("user", "admin"):
        raise UnauthenticatedError("a valid access token is required")
    return Caller(user_id=user_id, session_id=session_id, role=role)


def admin(app: APIGatewayRestResolver) -> Caller:
    """The authenticated caller, who must be an admin: 403 for anyone else (checked here,
    server side, whatever the client claims)."""
    who = caller(app)
    if who.role != "admin":
        raise ForbiddenError("this operation is for admins only")
    return who


IDEMPOTENCY_HEADER = "idempotency-key"
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        pattern=r"^[\x20-\x7e]{1,255}$",
        description="1-255 printable ASCII characters, scoped to the caller, kept 24 h; "
        "missing: 400 idempotency_key_missing",
    ),
]
"""The Idempotency-Key header of a money-moving POST, declared so that it is validated and
documented like any other input."""


def client(app: APIGatewayRestResolver) -> tuple[str, str]:
    """(user agent, source IP) of the request, as API Gateway saw them: the IP is the
    connection's (`requestContext.identity.sourceIp`), never a client-set X-Forwarded-For."""
    event = app.current_event
    user_agent = event.headers.get("User-Agent") or event.headers.get("user-agent") or ""
    return user_agent, event.request_context.identity.source_ip or ""
