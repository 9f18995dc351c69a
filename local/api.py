"""The API Gateway front: what `sam local start-api` does, derived from template.yaml.

A request is matched against the `Api` events of the template, turned into a REST API proxy
event (payload format 1.0), passed through the API's Lambda TOKEN authorizer unless the route
says `Authorizer: NONE`, and the function's proxy response becomes the HTTP response. Errors
API Gateway answers itself (no route, missing token, denied, body too large, the function
failed) come out as its gateway responses, customised as the template's `GatewayResponses` say.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from local.cfn import ACCOUNT_ID, API_ID, REGION
from local.runtime import Invocation
from local.specs import ApiEvent, ApiSpec, Authorizer, apis, functions

DEFAULT_PORT = 3000
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit

# API Gateway's own responses, before the template customises them. LAMBDA_FAILURE is not a
# gateway response type of its own: it can be customised through DEFAULT_5XX only.
_BUILT_IN_RESPONSES: dict[str, tuple[int, str]] = {
    "MISSING_AUTHENTICATION_TOKEN": (403, '{"message":"Missing Authentication Token"}'),
    "UNAUTHORIZED": (401, '{"message":"Unauthorized"}'),
    "ACCESS_DENIED": (
        403,
        '{"Message":"User is not authorized to access this resource with an explicit deny"}',
    ),
    "AUTHORIZER_FAILURE": (500, '{"message":null}'),
    "AUTHORIZER_CONFIGURATION_ERROR": (500, '{"message":null}'),
    "REQUEST_TOO_LARGE": (413, '{"message":"Request Too Long"}'),
    "LAMBDA_FAILURE": (502, '{"message": "Internal server error"}'),
    "INTEGRATION_TIMEOUT": (504, '{"message": "Endpoint request timed out"}'),
}
INTEGRATION_TIMEOUT_SECONDS = 29  # API Gateway REST's integration timeout
_IMPLICIT_API = ApiSpec("ServerlessRestApi", "Prod", {}, {})

Invoke = Callable[[str, Any], Invocation]
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str  # as sent, percent-encoded
    query: str
    headers: list[tuple[str, str]]
    body: bytes
    source_ip: str


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


@dataclass(frozen=True)
class Route:
    event: ApiEvent
    pattern: re.Pattern[str]
    parameters: tuple[str, ...]
    literal_segments: int

    @classmethod
    def of(cls, event: ApiEvent) -> Route:
        parts, names = [], []
        for segment in event.path.strip("/").split("/"):
            if match := re.fullmatch(r"\{(.+?)(\+?)\}", segment):
                names.append(match.group(1))
                parts.append("(.+)" if match.group(2) else "([^/]+)")
            else:
                parts.append(re.escape(segment))
        pattern = re.compile("/" + "/".join(parts))
        return cls(event, pattern, tuple(names), len(parts) - len(names))


def _header(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    values = [value for key, value in headers if key.lower() == name.lower()]
    return values[-1] if values else None


def _multi(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    multi: dict[str, list[str]] = {}
    for key, value in pairs:
        multi.setdefault(key, []).append(value)
    return multi


def _forwarded(request: HttpRequest) -> list[tuple[str, str]]:
    """The request's headers with the X-Forwarded-* headers API Gateway sets."""
    forwarded = _header(request.headers, "X-Forwarded-For")
    chain = f"{forwarded}, {request.source_ip}" if forwarded else request.source_ip
    kept = [(k, v) for k, v in request.headers if not k.lower().startswith("x-forwarded-")]
    return [*kept, ("X-Forwarded-For", chain), ("X-Forwarded-Proto", "http")]


def proxy_event(route: Route, stage: str, request: HttpRequest, request_id: str) -> dict[str, Any]:
    """The REST API Lambda proxy event (format 1.0) of `request` on `route`."""
    path = unquote(request.path)
    match = route.pattern.fullmatch(path)
    parameters = dict(zip(route.parameters, match.groups(), strict=True)) if match else {}
    multi_headers = _multi(_forwarded(request))
    multi_query = _multi(parse_qsl(request.query, keep_blank_values=True))
    now = time.time()
    return {
        "resource": route.event.path,
        "path": path,
        "httpMethod": request.method,
        "headers": {key: values[-1] for key, values in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": parameters or None,
        "stageVariables": None,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "resourceId": "local",
            "resourcePath": route.event.path,
            "httpMethod": request.method,
            "path": f"/{stage}{path}",
            "stage": stage,
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "requestTimeEpoch": int(now * 1000),
            "domainName": _header(request.headers, "Host") or "localhost",
            "identity": {
                "sourceIp": request.source_ip,
                "userAgent": _header(request.headers, "User-Agent"),
                "accountId": None,
                "caller": None,
                "user": None,
                "userArn": None,
                "apiKey": None,
                "accessKey": None,
                "cognitoIdentityId": None,
            },
        },
        "body": request.body.decode("utf-8", errors="replace") if request.body else None,
        "isBase64Encoded": False,
    }


def _glob(pattern: str, value: str) -> bool:
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, value, flags=re.IGNORECASE) is not None


def policy_allows(policy: Any, method_arn: str) -> bool:
    """IAM evaluation of an authorizer's policy for execute-api:Invoke on `method_arn`."""
    statements = policy.get("Statement", []) if isinstance(policy, dict) else []
    allowed = False
    for statement in statements if isinstance(statements, list) else [statements]:
        actions, resources = statement.get("Action", []), statement.get("Resource", [])
        if not any(_glob(action, "execute-api:Invoke") for action in _as_list(actions)):
            continue
        if not any(_glob(resource, method_arn) for resource in _as_list(resources)):
            continue
        effect = str(statement.get("Effect", "")).lower()
        if effect == "deny":
            return False
        allowed = allowed or effect == "allow"
    return allowed


def _as_list(value: Any) -> list[str]:
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


def authorizer_context(result: Any) -> dict[str, str]:
    """requestContext.authorizer from an authorizer's output (values become strings, as in REST)."""
    if (
        not isinstance(result, dict)
        or "principalId" not in result
        or "policyDocument" not in result
    ):
        raise ValueError("an authorizer must return principalId and policyDocument")
    context = result.get("context") or {}
    if not isinstance(context, dict) or any(isinstance(v, (dict, list)) for v in context.values()):
        raise ValueError("authorizer context values must be strings, numbers or booleans")
    values = {
        key: json.dumps(value) if isinstance(value, bool) or value is None else str(value)
        for key, value in context.items()
    }
    return {**values, "principalId": str(result["principalId"])}


LocalRoute = Callable[[dict[str, Any]], dict[str, Any]]
"""A local-only endpoint (never in template.yaml: the inbox, the sandbox's tokenisation),
routed as the template's are: a proxy event in, a proxy response out."""


class Gateway:
    """Routes, authorizes and invokes; HTTP-free, so it can be driven directly too.

    `helpers` are the local stack's own endpoints (`(method, path)` -> handler, such as the
    sandbox gateway's `POST /_sandbox/v1/tokens`): routed like the template's, without an
    authorizer, and answered in this process."""

    def __init__(
        self,
        events: Iterable[ApiEvent],
        api_specs: Mapping[str, ApiSpec],
        invoke: Invoke,
        helpers: Mapping[tuple[str, str], LocalRoute] | None = None,
    ) -> None:
        self._helpers = {
            f"local:{method} {path}": h for (method, path), h in (helpers or {}).items()
        }
        local = [
            ApiEvent(f"local:{method} {path}", None, path, method, None)
            for method, path in (helpers or {})
        ]
        self._routes = [Route.of(event) for event in [*events, *local]]
        self._apis = dict(api_specs)
        self._invoke = invoke

    @classmethod
    def from_template(
        cls,
        template: Mapping[str, Any],
        invoke: Invoke,
        helpers: Mapping[tuple[str, str], LocalRoute] | None = None,
    ) -> Gateway:
        events = [event for spec in functions(template).values() for event in spec.api_events]
        return cls(events, apis(template), invoke, helpers)

    def _call(self, function_id: str, event: dict[str, Any]) -> Invocation:
        helper = self._helpers.get(function_id)
        if helper is None:
            return self._invoke(function_id, event)
        try:
            return Invocation(event["requestContext"]["requestId"], payload=helper(event))
        except Exception as exc:  # noqa: BLE001 - answered as a failed function would be
            return Invocation("", error={"errorType": type(exc).__name__, "errorMessage": ""})

    @property
    def routes(self) -> list[Route]:
        return list(self._routes)

    def handle(self, request: HttpRequest) -> HttpResponse:
        route = self._match(request.method, unquote(request.path))
        if route is None:
            return self.reject("MISSING_AUTHENTICATION_TOKEN", request)
        request_id = str(uuid.uuid4())
        api = self._apis.get(route.event.api_id or "", _IMPLICIT_API)
        if len(request.body) > MAX_BODY_BYTES:
            return gateway_response(api, "REQUEST_TOO_LARGE", request_id, request)
        event = proxy_event(route, api.stage, request, request_id)
        if route.event.authorizer is not None:
            outcome = self._authorize(
                api, api.authorizers[route.event.authorizer], request, request_id
            )
            if isinstance(outcome, HttpResponse):
                return outcome
            event["requestContext"]["authorizer"] = outcome
        started = time.monotonic()
        invocation = self._call(route.event.function_id, event)
        if time.monotonic() - started > INTEGRATION_TIMEOUT_SECONDS:
            return gateway_response(api, "INTEGRATION_TIMEOUT", request_id, request)
        try:
            return _proxy_response(invocation, request_id)
        # The function failed, or answered something that is not a proxy response.
        except (TypeError, ValueError, KeyError) as exc:
            _log.warning(
                "%s %s -> %s: %s", request.method, request.path, route.event.function_id, exc
            )
            return gateway_response(api, "LAMBDA_FAILURE", request_id, request)

    def reject(self, kind: str, request: HttpRequest) -> HttpResponse:
        """A gateway response for a request refused before it reached a route."""
        default = next(iter(self._apis.values()), _IMPLICIT_API)
        return gateway_response(default, kind, str(uuid.uuid4()), request)

    def _match(self, method: str, path: str) -> Route | None:
        candidates = [
            route
            for route in self._routes
            if route.event.method in (method, "ANY") and route.pattern.fullmatch(path)
        ]
        return max(candidates, key=lambda route: route.literal_segments, default=None)

    def _authorize(
        self, api: ApiSpec, authorizer: Authorizer, request: HttpRequest, request_id: str
    ) -> dict[str, str] | HttpResponse:
        token = _header(request.headers, authorizer.header)
        expression = authorizer.validation_expression
        if not token or (expression and not re.fullmatch(expression, token)):
            return gateway_response(api, "UNAUTHORIZED", request_id, request)
        method_arn = (
            f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{API_ID}/{api.stage}/"
            f"{request.method}/{unquote(request.path).lstrip('/')}"
        )
        started = time.monotonic()
        invocation = self._invoke(
            authorizer.function_id,
            {"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn},
        )
        if invocation.error is not None:
            unauthorized = invocation.error.get("errorMessage") == "Unauthorized"
            kind = "UNAUTHORIZED" if unauthorized else "AUTHORIZER_FAILURE"
            return gateway_response(api, kind, request_id, request)
        try:
            context = authorizer_context(invocation.payload)
        except ValueError:
            return gateway_response(api, "AUTHORIZER_CONFIGURATION_ERROR", request_id, request)
        if not policy_allows(invocation.payload["policyDocument"], method_arn):
            return gateway_response(api, "ACCESS_DENIED", request_id, request)
        return {**context, "integrationLatency": str(int((time.monotonic() - started) * 1000))}


def gateway_response(
    api: ApiSpec, kind: str, request_id: str, request: HttpRequest
) -> HttpResponse:
    """API Gateway's response of type `kind`, as the template's GatewayResponses customise it."""
    status, body = _BUILT_IN_RESPONSES[kind]
    family = "DEFAULT_4XX" if status < 500 else "DEFAULT_5XX"
    custom = api.gateway_responses.get(kind) or api.gateway_responses.get(family)
    headers = {"content-type": ("Content-Type", "application/json")}
    if custom is not None:
        status = custom.status or status
        template = custom.templates.get("application/json")
        body = template.replace("$context.requestId", request_id) if template else body
        for name, expression in custom.headers.items():
            if expression.startswith("'") and expression.endswith("'"):
                value: str | None = expression[1:-1]
            elif expression == "context.requestId":
                value = request_id
            else:
                value = _header(request.headers, expression.removeprefix("method.request.header."))
            if value is not None:
                headers[name.lower()] = (name, value)
    response = HttpResponse(status, list(headers.values()), body.encode())
    return _with_request_id(response, request_id)


def _proxy_response(invocation: Invocation, request_id: str) -> HttpResponse:
    if invocation.error is not None:
        raise ValueError(
            f"{invocation.error.get('errorType')}: {invocation.error.get('errorMessage')}"
        )
    result = invocation.payload
    if not isinstance(result, dict):
        raise TypeError(f"a proxy response must be an object, not {type(result).__name__}")
    status = int(result["statusCode"])
    multi = {
        name: [str(v) for v in values]
        for name, values in (result.get("multiValueHeaders") or {}).items()
    }
    single = {
        name: str(value)
        for name, value in (result.get("headers") or {}).items()
        if name.lower() not in {key.lower() for key in multi}
    }
    headers = [*((name, value) for name, values in multi.items() for value in values)]
    headers += single.items()
    if _header(headers, "Content-Type") is None:
        headers.append(("Content-Type", "application/json"))
    body = result.get("body") or ""
    if not isinstance(body, str):
        raise TypeError("the body of a proxy response must be a string")
    raw = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    return _with_request_id(HttpResponse(status, headers, raw), request_id)


def _with_request_id(response: HttpResponse, request_id: str) -> HttpResponse:
    headers = [*response.headers, ("x-amzn-RequestId", request_id)]
    if _header(headers, "X-Request-Id") is None:
        headers.append(("X-Request-Id", request_id))
    return HttpResponse(response.status, headers, response.body)


# ------------------------------------------------------------------------------------ HTTP
class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog is 5: fifteen clients connecting at once (the bank test's
    # race) overflowed it, and the kernel's SYN cookies then reset some of those connections.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], gateway: Gateway) -> None:
        super().__init__(address, _RequestHandler)
        self.gateway = gateway

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class _RequestHandler(BaseHTTPRequestHandler):
    server: ApiServer
    protocol_version = "HTTP/1.1"

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        body = self._read_body()
        request = HttpRequest(
            self.command,
            url.path,
            url.query,
            list(self.headers.items()),
            body or b"",
            self.client_address[0],
        )
        if body is None:  # too large: refused unread, and the connection closed
            self.close_connection = True
            self._send(self.server.gateway.reject("REQUEST_TOO_LARGE", request))
        else:
            self._send(self.server.gateway.handle(request))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def __getattr__(self, name: str) -> Any:
        """Any other method (TRACE, PROPFIND, ...) is routed too, so it gets API Gateway's
        answer for a method it does not route, not http.server's 501 page."""
        if name.startswith("do_"):
            return self._dispatch
        raise AttributeError(name)

    def _read_body(self) -> bytes | None:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks, size = [], 0
            while (length := int(self.rfile.readline().split(b";")[0], 16)) > 0:
                size += length
                if size > MAX_BODY_BYTES:
                    return None
                chunks.append(self.rfile.read(length))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(chunks)
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            return None
        return None if not 0 <= length <= MAX_BODY_BYTES else self.rfile.read(length)

    def _send(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)


def make_server(
    gateway: Gateway,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
) -> ApiServer:
    """The HTTP front on host:port (0: any free port); run it with `serve_forever()`."""
    return ApiServer((host, port), gateway)
