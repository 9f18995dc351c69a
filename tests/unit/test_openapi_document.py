"""The OpenAPI document that GET /v1/openapi.json serves (functions/docs/openapi.json).

It must be what the code generates (`python -m tools.openapi`): the first test is the drift
check CI relies on. The others read the committed document, the one clients get: every Api
event of template.yaml with its request and response schemas, the bearer requirement exactly
where the template puts the authorizer, and the error bodies Cashew really sends.
"""

from __future__ import annotations

import ast
import copy
import inspect
import json
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate
from pydantic import ValidationError

from cashew.accounts.models import CardInput, luhn_valid
from local.cfn import load_template
from local.events import api_event
from local.specs import ApiEvent, FunctionSpec, functions
from tests.support.lambda_runtime import FakeContext, handler_module, reply
from tools import openapi
from tools.openapi import OUTPUT, OpenApiGenerationError, Problem, generate, render

MONEY_POSTS = ("/v1/top-ups", "/v1/payments")


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def api_functions(template: dict[str, Any]) -> dict[str, FunctionSpec]:
    """Every function an operation is wired to (the CORS preflights are not operations)."""
    return {
        fid: spec
        for fid, spec in functions(template).items()
        if spec.api_events and fid not in openapi.PREFLIGHT_FUNCTIONS
    }


@pytest.fixture(scope="module")
def events(api_functions: dict[str, FunctionSpec]) -> list[ApiEvent]:
    return [event for spec in api_functions.values() for event in spec.api_events]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    """The committed document, as served."""
    loaded: dict[str, Any] = json.loads(OUTPUT.read_text(encoding="utf-8"))
    return loaded


def operation(document: dict[str, Any], event: ApiEvent) -> dict[str, Any]:
    operations: dict[str, Any] = document["paths"].get(event.path, {})
    assert event.method.lower() in operations, f"{event.method} {event.path} is not documented"
    found: dict[str, Any] = operations[event.method.lower()]
    return found


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """`schema`, or the component it refers to."""
    ref = schema.get("$ref")
    if ref is None:
        return schema
    resolved: dict[str, Any] = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return resolved


# --- the drift test --------------------------------------------------------------------
def test_committed_document_is_what_the_code_generates(template: dict[str, Any]) -> None:
    generated = render(generate(template).document)
    committed = OUTPUT.read_text(encoding="utf-8") if OUTPUT.is_file() else ""
    drift = openapi.drift(committed, generated)
    if drift is not None:
        pytest.fail(
            f"{drift}\n\nRegenerate it: make openapi (python -m tools.openapi)", pytrace=False
        )


# --- what the served document says ------------------------------------------------------
def test_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    validate(document)
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"] == "Cashew API"


def test_every_api_event_is_documented_and_nothing_else(
    document: dict[str, Any], events: list[ApiEvent]
) -> None:
    documented = {
        (method.upper(), path) for path, item in document["paths"].items() for method in item
    }
    assert documented == {(event.method, event.path) for event in events}


def test_docs_endpoint_documents_itself(document: dict[str, Any]) -> None:
    assert "get" in document["paths"]["/v1/openapi.json"]


def test_request_body_schema_where_the_route_takes_a_body(
    document: dict[str, Any], api_functions: dict[str, FunctionSpec]
) -> None:
    for spec in api_functions.values():
        app = handler_module(spec).app
        routes = {
            (route.method, route.openapi_path): route
            for route in app._static_routes + app._dynamic_routes
        }
        for event in spec.api_events:
            takes_body = bool(routes[(event.method, event.path)].dependant.body_params)
            documented = operation(document, event)
            if not takes_body:
                assert "requestBody" not in documented, f"{event.method} {event.path}"
                continue
            body = documented.get("requestBody", {})
            schema = body.get("content", {}).get("application/json", {}).get("schema")
            assert body.get("required") is True, f"{event.method} {event.path}"
            assert schema and resolve(document, schema).get("properties"), (
                f"{event.method} {event.path}: no request body schema"
            )


def test_every_operation_documents_its_success_response(
    document: dict[str, Any], events: list[ApiEvent]
) -> None:
    wrong = []
    for event in events:
        name = f"{event.method} {event.path}"
        responses = operation(document, event)["responses"]
        success = [status for status in responses if status.startswith("2")]
        if len(success) != 1:
            wrong.append(f"{name}: 2xx responses {success}, not one")
            continue
        status, response = success[0], responses[success[0]]
        content = response.get("content", {})  # JSON, or text/csv for the export
        schema = next((media.get("schema") for media in content.values()), None)
        if status == "204":
            if "content" in response:
                wrong.append(f"{name}: 204 with a body")
        elif not schema:
            wrong.append(f"{name}: {status} without a schema")
        elif schema.get("type") == "null":
            wrong.append(
                f"{name}: {status} with a null body; a route that answers 204 must say so "
                "(status_code=204 in its decorator)"
            )
        elif "$ref" in schema:
            assert resolve(document, schema), name
    assert not wrong, "\n".join(wrong)


def literal_statuses(function: Any) -> set[int]:
    """The status codes `function` passes literally to Response(status_code=...)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    return {
        keyword.value.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Response"
        for keyword in node.keywords
        if keyword.arg == "status_code"
        and isinstance(keyword.value, ast.Constant)
        and isinstance(keyword.value.value, int)
    }


def test_documented_status_is_the_one_the_handler_returns(
    document: dict[str, Any], api_functions: dict[str, FunctionSpec]
) -> None:
    """A handler that returns Response(status_code=201) must declare status_code=201 on its
    route, or the document says 200."""
    wrong = []
    for spec in api_functions.values():
        app = handler_module(spec).app
        for route in app._static_routes + app._dynamic_routes:
            event = next(
                e
                for e in spec.api_events
                if (e.method, e.path) == (route.method, route.openapi_path)
            )
            documented = {s for s in operation(document, event)["responses"] if s.startswith("2")}
            returned = {str(status) for status in literal_statuses(route.func) if status < 300}
            if returned and documented != returned:
                wrong.append(
                    f"{event.method} {event.path}: documented {sorted(documented)}, the handler "
                    f"returns {sorted(returned)}; declare status_code= on its route"
                )
    assert not wrong, "\n".join(wrong)


def test_protected_routes_require_the_bearer_token_and_public_ones_do_not(
    document: dict[str, Any], events: list[ApiEvent]
) -> None:
    assert "security" not in document  # no global requirement: each operation says
    schemes = document["components"]["securitySchemes"]
    for event in events:
        documented = operation(document, event)
        if event.authorizer is None:
            assert "security" not in documented, f"{event.method} {event.path} is public"
        else:
            assert documented["security"] == [{event.authorizer: []}], event
            assert "401" in documented["responses"], event
            assert schemes[event.authorizer] | {"description": ""} == {
                "type": "http",
                "scheme": "bearer",
                "bearerFormat": "JWT",
                "description": "",
            }
    public = {(e.method, e.path) for e in events if e.authorizer is None}
    assert ("POST", "/v1/auth/login") in public
    assert ("GET", "/v1/users/me") not in public


def test_operations_are_tagged_with_their_module(
    document: dict[str, Any], api_functions: dict[str, FunctionSpec]
) -> None:
    for spec in api_functions.values():
        for event in spec.api_events:
            assert operation(document, event)["tags"][0] == spec.code_dir.name


@pytest.mark.parametrize("path", MONEY_POSTS)
def test_money_posts_document_201_created(document: dict[str, Any], path: str) -> None:
    """Their handlers return payment_response(result), whose status (always 201, replays
    included) the source does not show, so the route must declare it."""
    responses = document["paths"][path]["post"]["responses"]
    assert [status for status in responses if status.startswith("2")] == ["201"], (
        f"POST {path} answers 201: declare @app.post(..., status_code=201)"
    )


@pytest.mark.parametrize("path", MONEY_POSTS)
def test_money_posts_document_the_idempotency_key(document: dict[str, Any], path: str) -> None:
    parameters = document["paths"][path]["post"].get("parameters", [])
    headers = {p["name"].lower(): p for p in parameters if p["in"] == "header"}
    assert headers["idempotency-key"]["required"] is True


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_errors_are_documented_as_the_problem_json_cashew_sends(
    document: dict[str, Any], events: list[ApiEvent], api_functions: dict[str, FunctionSpec]
) -> None:
    problem = {"$ref": "#/components/schemas/Problem"}
    for event in events:
        for status, response in operation(document, event)["responses"].items():
            assert "X-Request-Id" in response["headers"], f"{event} {status}"
            if not status.startswith("2"):
                assert response["content"] == {"application/problem+json": {"schema": problem}}
    # A real 422 from a real handler has exactly the fields the Problem schema declares.
    register = api_functions["RegisterFunction"]
    raw = getattr(handler_module(register), register.handler_attr)(
        api_event("accounts/register.json", body={"email": 1}), FakeContext()
    )
    answer = reply(raw)
    assert answer.status == 422
    assert set(answer.body) == set(Problem.model_fields)
    Problem.model_validate(answer.body)
    assert set(document["components"]["schemas"]["Problem"]["required"]) == set(answer.body) - {
        "errors"
    }


# --- the generator refuses what it cannot document ---------------------------------------
def small_template(template: dict[str, Any], *keep: str) -> dict[str, Any]:
    """`template` with the API, its authorizer and only the functions `keep`."""
    small = copy.deepcopy(template)
    resources = small["Resources"]
    for logical_id in list(resources):
        kind = resources[logical_id]["Type"]
        wanted = logical_id in (*keep, "AuthorizerFunction")
        if kind == "AWS::Serverless::Function" and not wanted:
            del resources[logical_id]
    return small


def test_generator_names_the_function_whose_handler_is_missing(template: dict[str, Any]) -> None:
    small = small_template(template, "HealthFunction", "GetMeFunction")
    small["Resources"]["GetMeFunction"]["Properties"]["Handler"] = "not_yet.lambda_handler"
    with pytest.raises(OpenApiGenerationError, match=r"GetMeFunction: .*not_yet\.py"):
        generate(small)
    # for development only: left out, and said so
    generated = generate(small, allow_missing=True)
    assert generated.skipped == ("GetMeFunction",)
    assert list(generated.document["paths"]) == ["/v1/health"]


def test_generator_refuses_events_and_routes_that_do_not_match(template: dict[str, Any]) -> None:
    small = small_template(template, "HealthFunction")
    event = small["Resources"]["HealthFunction"]["Properties"]["Events"]["Get"]
    event["Properties"]["Path"] = "/v1/healthz"
    with pytest.raises(OpenApiGenerationError) as raised:
        generate(small)
    assert raised.value.problems == (
        "HealthFunction: template.yaml wires GET /v1/healthz to it, "
        "but functions/system/health.py has no such route",
        "HealthFunction: functions/system/health.py routes GET /v1/health, "
        "but template.yaml wires no such event to it",
    )


def test_generator_refuses_a_path_wired_to_two_functions(template: dict[str, Any]) -> None:
    small = small_template(template, "HealthFunction", "GetMeFunction")
    small["Resources"]["HealthFunction"]["Properties"]["Events"]["Me"] = copy.deepcopy(
        small["Resources"]["GetMeFunction"]["Properties"]["Events"]["Get"]
    )
    with pytest.raises(OpenApiGenerationError, match="GET /v1/users/me is also wired to"):
        generate(small)


# --- the command line -------------------------------------------------------------------
@pytest.fixture
def output(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "openapi.json"
    monkeypatch.setattr(openapi, "OUTPUT", path)
    yield path


def test_cli_writes_then_checks(output: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert openapi.main([]) == 0
    assert "wrote" in capsys.readouterr().out
    written = output.read_text(encoding="utf-8")
    assert written.endswith("}\n") and render(json.loads(written)) == written
    assert openapi.main(["--check"]) == 0


def test_cli_check_fails_on_drift(output: Path, capsys: pytest.CaptureFixture[str]) -> None:
    document = json.loads(OUTPUT.read_text(encoding="utf-8"))
    del document["paths"]["/v1/health"]
    output.write_text(render(document), encoding="utf-8")
    assert openapi.main(["--check"]) == 1
    message = capsys.readouterr().err
    assert "is not what the code generates" in message
    assert '+    "/v1/health": {' in message
    assert "make openapi" in message
    output.unlink()
    assert openapi.main(["--check"]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_cli_fails_when_it_cannot_generate(
    output: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = small_template(load_template(), "HealthFunction")
    broken["Resources"]["HealthFunction"]["Properties"]["Handler"] = "gone.lambda_handler"
    monkeypatch.setattr(openapi, "load_template", lambda: broken)
    assert openapi.main([]) == 2
    assert "HealthFunction: its handler functions/system/gone.py does not exist" in (
        capsys.readouterr().err
    )
    assert not output.exists()


# --- what the fuzzing gate relies on (tests/e2e/test_fuzz.py) -----------------------------
def all_operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, found in item.items():
            yield method.upper(), path, found


def test_cursors_are_documented_as_opaque_and_next_cursor_says_where_the_next_page_is(
    document: dict[str, Any],
) -> None:
    cursors = [
        (f"{method} {path}", parameter)
        for method, path, found in all_operations(document)
        for parameter in found.get("parameters", [])
        if parameter["name"] == "cursor"
    ]
    assert len(cursors) >= 9  # every list
    for name, parameter in cursors:
        assert parameter["in"] == "query", name
        assert "Opaque" in parameter["description"] and "next_cursor" in parameter["description"]
    pages = [
        s
        for s in document["components"]["schemas"].values()
        if "next_cursor" in s.get("properties", {})
    ]
    assert pages
    for schema in pages:
        assert "`cursor`" in schema["properties"]["next_cursor"]["description"]


def test_time_bounds_are_rfc3339_with_an_offset_between_2000_and_9000(
    document: dict[str, Any],
) -> None:
    bounds = [
        parameter
        for _, _, found in all_operations(document)
        for parameter in found.get("parameters", [])
        if parameter["name"] in ("from", "to")
    ]
    assert len(bounds) == 8  # transactions, admin transactions, summary, csv
    for parameter in bounds:
        assert "RFC 3339" in parameter["description"] and "offset" in parameter["description"]
        assert "2000-01-01T00:00:00" in parameter["description"]
        assert "9000-01-01T00:00:00" in parameter["description"]
        assert {"format": "date-time", "type": "string"} in parameter["schema"]["anyOf"]


def test_every_error_each_operation_can_give_is_documented(document: dict[str, Any]) -> None:
    for method, path, found in all_operations(document):
        responses, name = found["responses"], f"{method} {path}"
        for status in ("404", "413", "429", "500", "502"):  # API Gateway's own included
            assert status in responses, f"{name}: {status}"
        assert "Retry-After" in responses["429"]["headers"], name
        if "security" in found:
            assert {"401", "403"} <= set(responses), name
            assert "authorizer" in responses["401"]["description"], name
        if "requestBody" in found:
            assert {"415", "422"} <= set(responses), name
        if method != "GET":
            assert "409" in responses, name
        headers = {p["name"].lower() for p in found.get("parameters", []) if p["in"] == "header"}
        if "idempotency-key" in headers:
            assert "`idempotency_key_missing`" in responses["400"]["description"], name
    paths = document["paths"]
    assert (
        "`invalid_credentials`"
        in paths["/v1/auth/login"]["post"]["responses"]["401"]["description"]
    )
    assert "401" in paths["/v1/auth/refresh"]["post"]["responses"]
    webhook = paths["/v1/webhooks/gateway"]["post"]["responses"]
    assert "`invalid_signature`" in webhook["400"]["description"]
    assert "x-cashew-errors" not in json.dumps(document)


def links(document: dict[str, Any], method: str, path: str, status: str) -> dict[str, str]:
    found = document["paths"][path][method.lower()]["responses"][status].get("links", {})
    return {
        link["operationId"]: link["parameters"]["path.id"]
        for link in found.values()
        if "parameters" in link  # the body links have their own test
    }


def test_links_lead_from_what_creates_or_lists_to_its_items(document: dict[str, Any]) -> None:
    assert links(document, "POST", "/v1/payments", "201") == {
        "get_payment": "$response.body#/id",
        "capture_payment": "$response.body#/id",
        "cancel_payment": "$response.body#/id",
        "create_refund": "$response.body#/id",
        "list_refunds": "$response.body#/id",
    }
    assert links(document, "POST", "/v1/users/me/payment-methods", "201") == {
        "get_payment_method": "$response.body#/id",
        "update_payment_method": "$response.body#/id",
        "delete_payment_method": "$response.body#/id",
    }
    assert links(document, "GET", "/v1/transactions", "200") == {
        "get_transaction": "$response.body#/data/0/id",
        "get_receipt": "$response.body#/data/0/id",
        "open_dispute": "$response.body#/data/0/id",
    }
    assert links(document, "POST", "/v1/transactions/{id}/disputes", "201") == {
        "resolve_dispute": "$response.body#/id"
    }
    operation_ids = {found["operationId"] for _, _, found in all_operations(document)}
    for _, _, found in all_operations(document):
        for response in found["responses"].values():
            for link in response.get("links", {}).values():
                assert link["operationId"] in operation_ids


def test_body_links_carry_a_card_a_payee_and_a_refresh_token(document: dict[str, Any]) -> None:
    def bodies(path: str, method: str, status: str) -> dict[str, Any]:
        found = document["paths"][path][method]["responses"][status]["links"]
        return {
            link["operationId"]: link["requestBody"]
            for link in found.values()
            if "requestBody" in link
        }

    card = {"payment_method_id": "$response.body#/id"}
    assert bodies("/v1/users/me/payment-methods", "post", "201") == {
        "create_top_up": card,
        "create_payment": {"source": {"type": "card", **card}},
    }
    assert bodies("/v1/users/me/payment-methods", "get", "200")["create_top_up"] == {
        "payment_method_id": "$response.body#/data/0/id"
    }
    assert bodies("/v1/users", "post", "201") == {
        "create_payment": {"payee_id": "$response.body#/id"}
    }
    assert bodies("/v1/auth/login", "post", "200") == {
        "refresh": {"refresh_token": "$response.body#/refresh_token"}
    }


@pytest.mark.parametrize(
    ("number", "cvc"),
    [
        ("4242424242424242", "123"),
        ("4242 4242 4242 4242", "1234"),
        (" 424242424242 ", "000"),
        ("4242424242424241", "123"),  # the Luhn check the pattern cannot state
        ("42424242424", "12"),
        ("42424242424242424242", "12345"),
        ("4242-4242-4242-4242", "12a"),
        ("\uff14\uff12" * 8, "\uff11\uff12\uff13"),  # fullwidth digits: not ASCII
        ("4242\t4242 4242 4242", "123\n"),
    ],
)
def test_the_card_patterns_say_what_the_validators_check(number: str, cvc: str) -> None:
    schema = CardInput.model_json_schema()["properties"]
    valid = {"exp_month": 12, "exp_year": 2030}

    def accepted(**card: str) -> bool:
        try:
            CardInput.model_validate({"number": "4242424242424242", "cvc": "123", **valid, **card})
        except ValidationError:
            return False
        return True

    assert (re.fullmatch(schema["cvc"]["pattern"], cvc) is not None) == accepted(cvc=cvc)
    if re.fullmatch(schema["number"]["pattern"], number) is None:
        assert not accepted(number=number)
    else:  # what matches passes or fails the Luhn check only
        assert accepted(number=number) == luhn_valid(number.replace(" ", ""))
