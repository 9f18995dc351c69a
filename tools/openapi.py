"""The OpenAPI document of the whole API, generated from the code, for `GET /v1/openapi.json`.

Every API function has a resolver of its own, so no resolver knows the whole API, and merging
them at run time would make the docs function import every handler at cold start. Instead,
this tool imports the handler module of every function that template.yaml wires to an `Api`
event (from its CodeUri, with that directory on sys.path, as Lambda would), merges their
routes into one resolver and asks Powertools for the document. From the template it adds
what the code does not know: a route whose event uses the API's authorizer requires the
bearer token, and every operation is tagged with its module (`functions/<module>/`). It then
documents the error bodies Cashew really sends (RFC 9457 problem+json, not Powertools'
`{"detail": [...]}`) and the `X-Request-Id` header of every response.

The routes of the code and the `Api` events of the template must match one to one: an event
whose handler has no such route, a route no event sends to, a handler file that does not
exist or cannot be imported, all stop the generation with the function's logical id.

    python -m tools.openapi          write functions/docs/openapi.json (commit it)
    python -m tools.openapi --check  exit 1 if the committed file is not what the code generates

`--allow-missing` (development only, never in tests or CI) skips the functions whose handler
file does not exist yet, says which on stderr, and leaves their events out of the checks.

Exit status: 0 done, 1 the committed document is out of date (`--check`), 2 the document
cannot be generated.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import json
import sys
import tomllib
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver, Route
from aws_lambda_powertools.event_handler.openapi.models import (
    HTTPBearer,
    OpenAPI,
    SecurityScheme,
    Server,
    ServerVariable,
    Tag,
)
from pydantic import BaseModel, Field

from cashew import clock
from cashew.errors import CashewError
from cashew.http import ERRORS, IDEMPOTENCY_HEADER, MAX_BODY_BYTES
from cashew.ledger.query_params import EARLIEST, LATEST
from local.api import DEFAULT_PORT
from local.cfn import REGION, load_template
from local.handlers import load_module
from local.specs import ApiEvent, ApiSpec, FunctionSpec, apis, functions

REPO_ROOT = Path(__file__).resolve().parent.parent
OUTPUT = REPO_ROOT / "functions" / "docs" / "openapi.json"
TITLE = "Cashew API"
LOCAL_SERVER = f"http://127.0.0.1:{DEFAULT_PORT}"  # make dev
DESCRIPTION = (
    "Cashew, a serverless payments backend. This document is generated from the code by "
    "`python -m tools.openapi` (`make openapi`); do not edit it. The behaviour of every "
    "operation is specified by the Cashew HTTP API contract v1 (`shared/API.md`): amounts "
    "are integers in minor units, every error is RFC 9457 `application/problem+json` with a "
    "stable `code`, and every response carries `X-Request-Id`."
)
SCHEMA_REF = "#/components/schemas/"
REQUEST_ID_HEADER = "X-Request-Id"


class OpenApiGenerationError(Exception):
    """The document cannot be generated; `problems` says why, one line each."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = tuple(problems)


# ------------------------------------------------------------------------ error bodies
class ProblemFieldError(BaseModel):
    """One invalid field of a request."""

    field: str = Field(description="the field, dotted for nested ones (`card.number`)")
    message: str


class Problem(BaseModel):
    """An error: RFC 9457 problem details, as `cashew.http` writes them."""

    type: str = Field(description="`https://cashew.dev/errors/<code>`")
    title: str
    status: int = Field(description="the HTTP status code")
    detail: str
    code: str = Field(
        description="stable and machine-readable, e.g. `validation_error`, `unauthenticated`, "
        "`not_found`, `idempotency_key_missing` (the contract lists them all)"
    )
    request_id: str = Field(description="the `X-Request-Id` of the response")
    errors: list[ProblemFieldError] = Field(
        default_factory=list, description="for `validation_error`: every invalid field"
    )


# --------------------------------------------------------------------------- generation
@dataclass(frozen=True)
class Generated:
    document: dict[str, Any]
    skipped: tuple[str, ...]  # functions left out by allow_missing (their handler is missing)


@dataclass(frozen=True)
class _Operation:
    function_id: str
    module: str  # functions/<module>/
    event: ApiEvent
    route: Route


def generate(template: Mapping[str, Any], *, allow_missing: bool = False) -> Generated:
    """The document of every `Api` event of `template`, from the routes of their handlers.

    Raises OpenApiGenerationError listing every problem found. With `allow_missing` (for
    development only) a function whose handler file does not exist is skipped instead.
    """
    problems: list[str] = []
    operations, skipped = _collect_operations(template, allow_missing, problems)
    schemes = _security_schemes(operations, apis(template), problems)
    if problems:
        raise OpenApiGenerationError(problems)

    resolver = ApiGatewayResolver(enable_validation=True)
    for operation in operations:
        resolver._static_routes.append(operation.route)  # the schema ignores route order
    tags: list[Tag | str] = [*sorted({operation.module for operation in operations})]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        document: dict[str, Any] = json.loads(
            resolver.get_openapi_json_schema(
                title=TITLE,
                version=_version(),
                description=DESCRIPTION,
                servers=_servers(template),
                security_schemes=schemes or None,
                tags=tags,
            )
        )
    problems.extend(f"Powertools: {warning.message}" for warning in caught)
    _document_errors(document, problems)
    _document_pages_and_times(document)
    _document_links(document)
    _document_body_links(document)
    _prune_schemas(document)
    problems.extend(_coverage_problems(document, operations))
    try:
        OpenAPI.model_validate(document)
    except ValueError as exc:
        problems.append(f"the generated document is not a valid OpenAPI document: {exc}")
    if problems:
        raise OpenApiGenerationError(problems)
    return Generated(document, tuple(skipped))


def render(document: Mapping[str, Any]) -> str:
    """The document as committed: sorted keys, 2-space indent, a final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


PREFLIGHT_FUNCTIONS = ("PreflightFunction", "PaymentsPreflightFunction")
"""Answer the paths' CORS preflights (`OPTIONS`): plumbing of the browser's, not operations."""


def _collect_operations(
    template: Mapping[str, Any], allow_missing: bool, problems: list[str]
) -> tuple[list[_Operation], list[str]]:
    """One operation per `Api` event, each with its handler's route, tagged and secured."""
    operations: list[_Operation] = []
    skipped: list[str] = []
    wired: dict[tuple[str, str], str] = {}
    for function_id, spec in sorted(functions(template).items()):
        if not spec.api_events or function_id in PREFLIGHT_FUNCTIONS:
            continue
        for event in spec.api_events:
            key = (event.method, event.path)
            if event.method == "ANY":
                problems.append(f"{function_id}: ANY {event.path} cannot be documented")
            elif key in wired:
                problems.append(f"{function_id}: {_show(key)} is also wired to {wired[key]}")
            wired.setdefault(key, function_id)
        path = spec.code_dir / f"{spec.handler_module}.py"
        if not path.is_file():
            if allow_missing:
                skipped.append(function_id)
            else:
                problems.append(
                    f"{function_id}: its handler {_relative(path)} does not exist "
                    f"(template.yaml: CodeUri {_relative(spec.code_dir)}/, "
                    f"Handler {spec.handler_module}.{spec.handler_attr})"
                )
            continue
        try:
            resolver = _load_resolver(spec)
        except Exception as exc:  # noqa: BLE001 - any import failure is reported, with its id
            problems.append(f"{function_id}: cannot import {_relative(path)}: {exc!r}")
            continue
        operations.extend(_match_routes(spec, path, resolver, problems))
    return operations, skipped


def _load_resolver(spec: FunctionSpec) -> ApiGatewayResolver:
    """The one resolver of the handler module, loaded by file path as Lambda loads it."""
    module = load_module(spec, f"_cashew_openapi_{spec.logical_id}")
    if not callable(getattr(module, spec.handler_attr, None)):
        raise AttributeError(f"it has no function {spec.handler_attr}")
    resolvers = [value for value in vars(module).values() if isinstance(value, ApiGatewayResolver)]
    if len(resolvers) != 1:
        raise LookupError(f"it defines {len(resolvers)} resolvers, not 1")
    return resolvers[0]


def _match_routes(
    spec: FunctionSpec, path: Path, resolver: ApiGatewayResolver, problems: list[str]
) -> Iterator[_Operation]:
    """The routes of `resolver` paired with the events of `spec`: every event has its route
    and every route its event."""
    routes = {
        (route.method, route.openapi_path): route
        for route in resolver._dynamic_routes + resolver._static_routes
    }
    events = {(event.method, event.path): event for event in spec.api_events}
    for key in sorted(events.keys() - routes.keys()):
        problems.append(
            f"{spec.logical_id}: template.yaml wires {_show(key)} to it, "
            f"but {_relative(path)} has no such route"
        )
    for key in sorted(routes.keys() - events.keys()):
        problems.append(
            f"{spec.logical_id}: {_relative(path)} routes {_show(key)}, "
            "but template.yaml wires no such event to it"
        )
    module = spec.code_dir.name
    for key in sorted(events.keys() & routes.keys()):
        event, route = events[key], copy.copy(routes[key])
        if not route.include_in_schema:
            problems.append(f"{spec.logical_id}: {_show(key)} has include_in_schema=False")
            continue
        route.tags = [module, *(tag for tag in route.tags if tag != module)]
        route.security = [{event.authorizer: []}] if event.authorizer else None
        if route.operation_id == route._generate_operation_id():  # not chosen by the handler
            route.operation_id = route.func.__name__
        yield _Operation(spec.logical_id, module, event, route)


def _security_schemes(
    operations: Sequence[_Operation], api_specs: Mapping[str, ApiSpec], problems: list[str]
) -> dict[str, SecurityScheme]:
    """A bearer scheme for every authorizer a documented route uses."""
    schemes: dict[str, SecurityScheme] = {}
    for operation in operations:
        event = operation.event
        if event.authorizer is None or event.authorizer in schemes:
            continue
        api = api_specs.get(event.api_id or "")
        authorizer = api.authorizers.get(event.authorizer) if api else None
        if authorizer is None:
            problems.append(
                f"{operation.function_id}: authorizer {event.authorizer} of {_show_event(event)} "
                f"is not one of API {event.api_id}"
            )
        elif authorizer.header.lower() != "authorization":
            problems.append(
                f"{operation.function_id}: authorizer {event.authorizer} reads the header "
                f"{authorizer.header}; only Authorization bearer tokens are documented"
            )
        else:
            schemes[event.authorizer] = HTTPBearer(
                bearerFormat="JWT",
                description=(
                    "An access token from `POST /v1/auth/login` or `POST /v1/auth/refresh`, "
                    "sent as `Authorization: Bearer <token>`: a JWT with a `kid`, valid for "
                    "15 minutes at most, verifiable with `GET /.well-known/jwks.json`. "
                    "Missing, invalid, expired or revoked: 401 `unauthenticated`."
                ),
            )
    return schemes


def _version() -> str:
    with open(REPO_ROOT / "pyproject.toml", "rb") as file:
        return str(tomllib.load(file).get("project", {}).get("version", "1"))


def _servers(template: Mapping[str, Any]) -> list[Server]:
    stages = sorted({api.stage for api in apis(template).values()})
    return [
        Server(
            url="https://{apiId}.execute-api.{region}.amazonaws.com/{stage}",
            description="a deployed stack (its ApiUrl output)",
            variables={
                "apiId": ServerVariable(default="abcdef1234", description="the REST API's id"),
                "region": ServerVariable(default=REGION),
                "stage": ServerVariable(default=stages[0] if stages else "prod"),
            },
        ),
        Server(url=LOCAL_SERVER, description="the local stack (`make dev`)"),
    ]


# ---------------------------------------------------------------------- post-processing
def _problem_response(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": SCHEMA_REF + "Problem"}}},
    }


def _document_errors(document: dict[str, Any], problems: list[str]) -> None:
    """Error responses as Cashew sends them, `X-Request-Id` on every response, and no body
    for a 204."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template=SCHEMA_REF + "{model}")
    added = {**problem_schema.pop("$defs", {}), "Problem": problem_schema}
    for name in sorted(added.keys() & schemas.keys()):
        problems.append(f"a model of the API is named {name}, like the error body's")
    schemas.update(added)
    components["headers"] = {
        REQUEST_ID_HEADER: {
            "description": "the id of this request, also in every log line it wrote",
            "schema": {"type": "string"},
        }
    }
    for item in document.get("paths", {}).values():
        for method, operation in item.items():
            responses: dict[str, Any] = operation["responses"]
            powertools_422 = responses.get("422", {}).get("content", {}).get("application/json")
            if powertools_422 == {"schema": {"$ref": SCHEMA_REF + "HTTPValidationError"}}:
                del responses["422"]  # Powertools' own body, which CashewResolver never sends
            for status in _error_statuses(method, operation):
                responses.setdefault(status, {"description": ""})
            for status, description in operation.pop(ERRORS, {}).items():
                responses[str(status)] = {"description": description}
            for status, response in list(responses.items()):
                if status.isdigit() and int(status) >= 400:
                    responses[status] = _problem_response(
                        _error_description(
                            int(status),
                            response.get("description", ""),
                            secured=bool(operation.get("security")),
                        )
                    )
            responses.setdefault("default", _problem_response("An error (see `code`)"))
            for status, response in responses.items():
                if status == "204":
                    response.pop("content", None)
                response.setdefault("headers", {})[REQUEST_ID_HEADER] = {
                    "$ref": f"#/components/headers/{REQUEST_ID_HEADER}"
                }
            if "429" in responses:
                responses["429"]["headers"]["Retry-After"] = {
                    "description": "seconds to wait before retrying",
                    "schema": {"type": "string"},
                }


def _error_statuses(method: str, operation: Mapping[str, Any]) -> list[str]:
    """The error statuses an operation can answer, by what it takes: every operation can be
    throttled (429) or fail (500, 502), and refuses a body over the limit (413); a body can
    be of the wrong media type (415); input can be invalid (422); a secured operation needs
    the token (401) and may not be the caller's to use (403); an id names something that may
    not exist (404); a write can conflict with the state it finds (409); a money POST needs
    its Idempotency-Key (400)."""
    statuses = ["404", "413", "429", "500", "502"]
    parameters = operation.get("parameters", [])
    if operation.get("requestBody"):
        statuses += ["415", "422"]
    elif parameters:
        statuses.append("422")
    if operation.get("security"):
        statuses += ["401", "403"]
    if method != "get":
        statuses.append("409")
    if any(
        parameter["in"] == "header" and parameter["name"].lower() == IDEMPOTENCY_HEADER
        for parameter in parameters
    ):
        statuses.append("400")
    return statuses


def _error_codes() -> dict[int, list[str]]:
    """The error registry (`cashew.errors`): every code a client may see, by status."""
    codes: dict[int, list[str]] = {}
    pending: list[type[CashewError]] = [CashewError]
    while pending:
        error = pending.pop()
        pending.extend(error.__subclasses__())
        codes.setdefault(error.status, [])
        if error.code not in codes[error.status]:
            codes[error.status].append(error.code)
    return {status: sorted(found) for status, found in codes.items()}


_GATEWAY_ERRORS = {
    401: "API Gateway's authorizer answers it for a missing, invalid, expired or revoked "
    "access token",
    404: "API Gateway answers it for a path or method it does not route",
    413: "API Gateway answers it for a body over its 10 MiB limit, Cashew for one over "
    f"{MAX_BODY_BYTES // 1024} KiB",
    429: "API Gateway answers it when its throttling limits are reached (`rate_limited`, "
    "with `Retry-After`)",
    502: "API Gateway answers it when the function fails without answering",
}


def _error_description(status: int, declared: str, *, secured: bool) -> str:
    """What an error status means: the handler's own words, the codes of the error registry
    that have this status, and what API Gateway itself answers with it."""
    parts = [declared.rstrip(".") + "."] if declared else []
    codes = _error_codes().get(status, [])
    if codes:
        parts.append("Codes: " + ", ".join(f"`{code}`" for code in codes) + ".")
    if status in _GATEWAY_ERRORS and (secured or status != 401):
        parts.append(_GATEWAY_ERRORS[status] + ".")
    return " ".join(parts) or "An error (see `code`)"


CURSOR = (
    "Opaque: the `next_cursor` of the previous page of this very list, unchanged; omit it for "
    "the first page. A cursor this list did not give is 422 `validation_error`."
)
NEXT_CURSOR = (
    "Where the next page starts: send it back as the `cursor` query parameter; null on the "
    "last page (`has_more` false)."
)


def _time_bound(name: str) -> str:
    side = "at or after" if name == "from" else "at or before"
    return (
        f"Entries {side} this time: an RFC 3339 date-time with its offset (`Z` or `+hh:mm`), "
        f"between {clock.rfc3339(EARLIEST)} and {clock.rfc3339(LATEST)}; a time without an "
        "offset, or outside those bounds, is 422 `validation_error`."
    )


def _document_pages_and_times(document: dict[str, Any]) -> None:
    """The opaque `cursor` of every list and its `next_cursor`, and the `from`/`to` bounds."""
    for item in document.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                if parameter["in"] != "query":
                    continue
                if parameter["name"] == "cursor":
                    parameter["description"] = CURSOR
                    parameter["schema"]["description"] = CURSOR
                elif parameter["name"] in ("from", "to"):
                    parameter["description"] = _time_bound(parameter["name"])
                    parameter["schema"]["description"] = parameter["description"]
    for schema in document.get("components", {}).get("schemas", {}).values():
        properties = schema.get("properties", {})
        if "next_cursor" in properties:
            properties["next_cursor"]["description"] = NEXT_CURSOR


def _collection_items(paths: Mapping[str, Any]) -> dict[str, list[str]]:
    """For each collection name (`payments`), the paths of the operations on one of its items
    (`/v1/payments/{id}`, `/v1/payments/{id}/capture`, `/v1/admin/disputes/{id}/resolve`)."""
    found: dict[str, list[str]] = {}
    for path in paths:
        segments = path.strip("/").split("/")
        for index, segment in enumerate(segments[1:], start=1):
            if segment == "{id}" and not segments[index - 1].startswith("{"):
                found.setdefault(segments[index - 1], []).append(path)
    return found


def _document_links(document: dict[str, Any]) -> None:
    """OpenAPI links from what creates or lists a resource to the operations on one of its
    items, passing the new (or first listed) id as the item's `id`: POST /v1/payments 201 to
    GET /v1/payments/{id}, its capture, cancel and refunds; a transaction listed to its
    disputes; a dispute opened to its resolution. The collection is the last segment of the
    path that creates or lists (`/v1/transactions/{id}/disputes`: disputes)."""
    paths: dict[str, Any] = document.get("paths", {})
    items = _collection_items(paths)
    for path, item in paths.items():
        collection = path.rstrip("/").rsplit("/", 1)[-1]
        for method, operation in item.items():
            if method == "post":
                status, pointer = next(
                    ((s, "/id") for s in ("201", "200") if s in operation["responses"]),
                    (None, ""),
                )
            elif method == "get":
                status, pointer = "200", "/data/0/id"
            else:
                continue
            response = operation["responses"].get(status or "")
            schema = _success_schema(document, response)
            if response is None or not _has_pointer(document, schema, pointer):
                continue
            links = {}
            for target_path in items.get(collection, []):
                if target_path == path:
                    continue
                for target_method, target in sorted(paths[target_path].items()):
                    name = f"{target['operationId']}"
                    links[name] = {
                        "operationId": target["operationId"],
                        "parameters": {"path.id": f"$response.body#{pointer}"},
                        "description": f"{target_method.upper()} {target_path} on the "
                        f"{'new' if method == 'post' else 'first listed'} item",
                    }
            if links:
                response["links"] = links


# Links that carry an id into the body of an operation that takes it, by the operationId,
# status and JSON pointer of the id in the source's response: a card just added (or the first
# listed) pays a top-up or a payment, a user just registered is a payee, a login's refresh
# token is refreshed. `{id}` in a body stands for the source's id.
BODY_LINKS: dict[tuple[str, str, str], dict[str, Any]] = {
    ("add_payment_method", "201", "/id"): {
        "create_top_up": {"payment_method_id": "{id}"},
        "create_payment": {"source": {"type": "card", "payment_method_id": "{id}"}},
    },
    ("list_payment_methods", "200", "/data/0/id"): {
        "create_top_up": {"payment_method_id": "{id}"},
        "create_payment": {"source": {"type": "card", "payment_method_id": "{id}"}},
    },
    ("register", "201", "/id"): {"create_payment": {"payee_id": "{id}"}},
    # "{id}" is the link's placeholder for the token it carries (bandit B105 reads a password)
    ("login", "200", "/refresh_token"): {"refresh": {"refresh_token": "{id}"}},  # nosec B105
}


def _with_id(body: Any, expression: str) -> Any:
    if isinstance(body, dict):
        return {key: _with_id(value, expression) for key, value in body.items()}
    return expression if body == "{id}" else body


def _document_body_links(document: dict[str, Any]) -> None:
    """The BODY_LINKS: the stateful phase of a fuzzer (schemathesis merges the link's body
    into the one it generates) then pays with a real card and refreshes a real token."""
    operations = {
        operation["operationId"]: (method, path, operation)
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
    }
    for (source, status, pointer), targets in BODY_LINKS.items():
        if source not in operations:  # --allow-missing left it out
            continue
        response = operations[source][2]["responses"][status]
        schema = _success_schema(document, response)
        if not _has_pointer(document, schema, pointer):
            raise OpenApiGenerationError([f"{source} {status} has no string at {pointer}"])
        links = response.setdefault("links", {})
        for target, body in targets.items():
            if target not in operations:
                continue
            method, path, _ = operations[target]
            links[target] = {
                "operationId": target,
                "requestBody": _with_id(body, f"$response.body#{pointer}"),
                "description": f"{method.upper()} {path} with the "
                f"{'first listed' if pointer.startswith('/data/') else 'new'} "
                f"{pointer.rsplit('/', 1)[-1]}",
            }


def _success_schema(document: Mapping[str, Any], response: Any) -> dict[str, Any]:
    if not isinstance(response, dict):
        return {}
    content = response.get("content", {}).get("application/json", {})
    return _resolve(document, content.get("schema", {}))


def _resolve(document: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    if ref.startswith(SCHEMA_REF):
        resolved: dict[str, Any] = document["components"]["schemas"][ref.removeprefix(SCHEMA_REF)]
        return resolved
    return dict(schema)


def _has_pointer(document: Mapping[str, Any], schema: Mapping[str, Any], pointer: str) -> bool:
    """Whether every response of `schema` has the string at `pointer` (`/id`, `/data/0/id`)."""
    for part in pointer.strip("/").split("/"):
        if part == "0":
            schema = _resolve(document, schema.get("items", {}))
        else:
            schema = _resolve(document, schema.get("properties", {}).get(part, {}))
    return schema.get("type") == "string"


def _refs(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "$ref" and isinstance(item, str) and item.startswith(SCHEMA_REF):
                yield item.removeprefix(SCHEMA_REF)
            else:
                yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


def _prune_schemas(document: dict[str, Any]) -> None:
    """Drop the schemas nothing refers to (Powertools adds its validation-error models)."""
    schemas: dict[str, Any] = document.get("components", {}).get("schemas", {})
    outside = {key: value for key, value in document.items() if key != "components"}
    pending, used = list(_refs(outside)), set[str]()
    while pending:
        name = pending.pop()
        if name not in used and name in schemas:
            used.add(name)
            pending.extend(_refs(schemas[name]))
    for name in set(schemas) - used:
        del schemas[name]


def _coverage_problems(
    document: Mapping[str, Any], operations: Sequence[_Operation]
) -> Iterator[str]:
    """Every event that was documented is in the document, and nothing else is."""
    expected = {(operation.event.method, operation.event.path) for operation in operations}
    documented = {
        (method.upper(), path)
        for path, item in document.get("paths", {}).items()
        for method in item
    }
    for key in sorted(expected - documented):
        yield f"{_show(key)} is wired in template.yaml but missing from the document"
    for key in sorted(documented - expected):
        yield f"{_show(key)} is in the document but no template.yaml event sends it"


def _show(key: tuple[str, str]) -> str:
    return f"{key[0]} {key[1]}"


def _show_event(event: ApiEvent) -> str:
    return _show((event.method, event.path))


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


# -------------------------------------------------------------------------------- main
def drift(committed: str, generated: str) -> str | None:
    """What is wrong with the committed document, or None when it is the generated one."""
    if committed == generated:
        return None
    relative = _relative(OUTPUT)
    diff = list(
        difflib.unified_diff(
            committed.splitlines(),
            generated.splitlines(),
            f"{relative} (committed)",
            f"{relative} (generated from the code)",
            lineterm="",
        )
    )
    shown = "\n".join(diff[:80]) + (f"\n... {len(diff) - 80} more lines" if len(diff) > 80 else "")
    return f"{relative} is not what the code generates:\n{shown}"


def _generate_or_report(allow_missing: bool) -> str | None:
    """The document's text, or None after printing why it cannot be generated."""
    try:
        generated = generate(load_template(), allow_missing=allow_missing)
    except OpenApiGenerationError as error:
        print("cannot generate the OpenAPI document:", file=sys.stderr)
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        return None
    for function_id in generated.skipped:
        print(
            f"warning: {function_id} left out, its handler file does not exist "
            "(--allow-missing: for development only)",
            file=sys.stderr,
        )
    return render(generated.document)


def _check(allow_missing: bool) -> int:
    relative = _relative(OUTPUT)
    if not OUTPUT.is_file():
        print(f"{relative} does not exist; generate it with `make openapi`", file=sys.stderr)
        return 1
    committed = OUTPUT.read_text(encoding="utf-8")
    generated = _generate_or_report(allow_missing)
    if generated is None:
        return 2
    difference = drift(committed, generated)
    if difference is not None:
        print(difference, file=sys.stderr)
        print(
            "\nRegenerate it with `make openapi` (python -m tools.openapi) and commit it.",
            file=sys.stderr,
        )
        return 1
    print(f"{relative} is up to date")
    return 0


def _write(allow_missing: bool) -> int:
    placeholder = not OUTPUT.is_file()
    if placeholder:  # the docs handler, imported like every other, reads it at import time
        OUTPUT.write_text("{}\n", encoding="utf-8")
    generated = _generate_or_report(allow_missing)
    if generated is None:
        if placeholder:
            OUTPUT.unlink()
        return 2
    if placeholder or OUTPUT.read_text(encoding="utf-8") != generated:
        OUTPUT.write_text(generated, encoding="utf-8")
    operations = sum(len(item) for item in json.loads(generated).get("paths", {}).values())
    print(f"wrote {_relative(OUTPUT)}: {operations} operations")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.openapi",
        description=f"Generate {_relative(OUTPUT)} from the handlers that template.yaml wires.",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the committed document differs from the generated one",
    )
    parser.add_argument(
        "--allow-missing",
        action="store_true",
        help="DEVELOPMENT ONLY, never in tests or CI: leave out the functions whose handler "
        "file does not exist yet",
    )
    args = parser.parse_args(argv)
    return _check(args.allow_missing) if args.check else _write(args.allow_missing)


if __name__ == "__main__":
    sys.exit(main())
