"""The HTTP edge: problem+json errors, request ids, body limit, caller and Idempotency-Key.

A CashewResolver with routes defined here is driven in-process with API Gateway REST
events: no sockets.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from cashew import errors
from cashew.accounts.models import AddPaymentMethodRequest, RegisterRequest
from cashew.http import MAX_BODY_BYTES, CashewResolver, IdempotencyKey, caller, parse_json
from cashew.payments.models import PaymentRequest

REQUEST_ID = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
CARD_NUMBER = "4242424242424241"  # fails Luhn
PASSWORD = "Sup3rSecret"  # 11 characters
SECRET_MESSAGE = "db password is hunter2 at /var/task/cashew/secret.py"

app = CashewResolver()
raised: dict[str, Exception] = {}


@app.post("/t/raise")
def raise_configured() -> dict[str, Any]:
    raise raised["error"]


@app.get("/t/boom")
def boom() -> dict[str, Any]:
    raise RuntimeError(SECRET_MESSAGE)


@app.get("/t/key-error")
def key_error() -> dict[str, Any]:
    return {}["missing"]


@app.post("/t/cards")
def add_card(body: AddPaymentMethodRequest) -> dict[str, Any]:
    return {"ok": True}


@app.post("/t/users")
def register(body: RegisterRequest) -> dict[str, Any]:
    return {"ok": True}


@app.post("/t/payments")
def pay(body: PaymentRequest) -> dict[str, Any]:
    return {"ok": True}


@app.post("/t/raw")
def raw() -> dict[str, Any]:
    return {"size": len((app.current_event.body or "").encode())}


@app.post("/t/idempotency")
def with_key(key: IdempotencyKey) -> dict[str, Any]:
    return {"key": key}


@app.get("/t/me")
def me() -> dict[str, Any]:
    who = caller(app)
    return {"user_id": who.user_id, "session_id": who.session_id, "role": who.role}


def event(
    method: str,
    path: str,
    *,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    authorizer: dict[str, Any] | None = None,
    content_type: str | None = "application/json",
) -> dict[str, Any]:
    """A minimal API Gateway REST (v1) proxy event."""
    all_headers = {"Host": "api.cashew.test", **(headers or {})}
    if content_type:
        all_headers["Content-Type"] = content_type
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {k: [v] for k, v in all_headers.items()},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": REQUEST_ID,
            "httpMethod": method,
            "path": f"/prod{path}",
            "resourcePath": path,
            "stage": "prod",
            "authorizer": authorizer or {},
        },
        "body": body,
        "isBase64Encoded": False,
    }


def header(response: dict[str, Any], name: str) -> str | None:
    for key, value in (response.get("headers") or {}).items():
        if key.lower() == name.lower():
            return str(value)
    for key, values in (response.get("multiValueHeaders") or {}).items():
        if key.lower() == name.lower():
            assert len(values) == 1, values
            return str(values[0])
    return None


def call(evt: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, Any]]:
    response = app.resolve(evt, None)  # type: ignore[arg-type]
    return response["statusCode"], json.loads(response["body"]), response


def assert_problem(response: dict[str, Any], body: dict[str, Any], status: int, code: str) -> None:
    assert response["statusCode"] == status
    assert header(response, "Content-Type") == "application/problem+json"
    assert body["status"] == status
    assert body["code"] == code
    assert body["type"] == f"https://cashew.dev/errors/{code}"
    assert body["title"]
    assert isinstance(body["detail"], str)
    assert body["request_id"] == REQUEST_ID
    assert header(response, "X-Request-Id") == REQUEST_ID
    assert set(body) <= {"type", "title", "status", "detail", "code", "request_id", "errors"}


# --- domain errors --------------------------------------------------------------------------

CONTRACT_CODES = [
    (errors.InvalidRequestError, 422, "validation_error"),
    (errors.UnauthenticatedError, 401, "unauthenticated"),
    (errors.InvalidCredentialsError, 401, "invalid_credentials"),
    (errors.ForbiddenError, 403, "forbidden"),
    (errors.NotFoundError, 404, "not_found"),
    (errors.EmailTakenError, 409, "email_taken"),
    (errors.ConflictError, 409, "conflict"),
    (errors.IdempotencyKeyMissingError, 400, "idempotency_key_missing"),
    (errors.IdempotencyKeyReusedError, 422, "idempotency_key_reused"),
    (errors.IdempotencyInProgressError, 409, "idempotency_in_progress"),
    (errors.PayloadTooLargeError, 413, "payload_too_large"),
    (errors.TooManyAttemptsError, 429, "too_many_attempts"),
    (errors.CashewError, 500, "internal_error"),
]


@pytest.mark.parametrize(
    ("error_class", "status", "code"), CONTRACT_CODES, ids=[c for _, _, c in CONTRACT_CODES]
)
def test_a_domain_error_becomes_problem_json(
    error_class: type[errors.CashewError], status: int, code: str
) -> None:
    # Given a handler that raises a domain error
    raised["error"] = error_class("what went wrong")
    # When the request is resolved
    _, body, response = call(event("POST", "/t/raise", body="{}"))
    # Then the client sees the contract's status and code, with this request's id
    assert_problem(response, body, status, code)
    assert body["detail"] == "what went wrong"


def test_domain_error_headers_and_field_errors_are_passed_on() -> None:
    raised["error"] = errors.TooManyAttemptsError(
        "slow down", headers={"Retry-After": "60"}, errors=[{"field": "email", "message": "x"}]
    )
    _, body, response = call(event("POST", "/t/raise", body="{}"))
    assert_problem(response, body, 429, "too_many_attempts")
    assert header(response, "Retry-After") == "60"
    assert body["errors"] == [{"field": "email", "message": "x"}]


def test_an_unknown_route_is_a_404_problem() -> None:
    _, body, response = call(event("GET", "/t/nowhere"))
    assert_problem(response, body, 404, "not_found")


def test_a_success_also_carries_the_request_id() -> None:
    status, _, response = call(event("POST", "/t/raw", body="{}"))
    assert status == 200
    assert header(response, "X-Request-Id") == REQUEST_ID


# --- unexpected errors ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/t/boom", "/t/key-error"])
def test_an_unexpected_exception_is_a_bare_500(path: str) -> None:
    _, body, response = call(event("GET", path))
    assert_problem(response, body, 500, "internal_error")
    text = response["body"]
    for leak in (
        "Traceback",
        "hunter2",
        "secret.py",
        "RuntimeError",
        "KeyError",
        "missing",
        'File "',
    ):
        assert leak not in text


# --- validation errors ----------------------------------------------------------------------


def test_validation_error_is_422_with_field_errors_and_no_card_data() -> None:
    # Given a card with a Luhn-invalid number, a malformed cvc, a string month and a stray field
    body = {
        "card": {"number": CARD_NUMBER, "exp_month": "12", "exp_year": 2030, "cvc": "98x"},
        "owner": "usr_x",
    }
    _, problem, response = call(event("POST", "/t/cards", body=json.dumps(body)))
    # Then it is a 422 listing every field
    assert_problem(response, problem, 422, "validation_error")
    fields = {e["field"] for e in problem["errors"]}
    assert fields == {"card.number", "card.cvc", "card.exp_month", "owner"}
    assert all(e["message"] for e in problem["errors"])
    # and no input value is echoed
    for value in (CARD_NUMBER, "98x", "usr_x", '"12"'):
        assert value not in response["body"]


def test_validation_error_never_echoes_the_password() -> None:
    body = {"email": "alice@example.com", "password": PASSWORD, "name": "Alice"}
    _, problem, response = call(event("POST", "/t/users", body=json.dumps(body)))
    assert_problem(response, problem, 422, "validation_error")
    assert [e["field"] for e in problem["errors"]] == ["password"]
    assert PASSWORD not in response["body"]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ("10.0", "amount"),
        ('"10"', "amount"),
        ("1e3", "amount"),
        ("0", "amount"),
        ("true", "amount"),
    ],
)
def test_money_rule_at_the_edge(raw: str, field: str) -> None:
    body = (
        '{"amount": ' + raw + ', "currency": "USD", '
        '"payee_id": "usr_01JCQ3H1J3K5M7N9P1Q3R5S7T9", "source": {"type": "balance"}}'
    )
    _, problem, response = call(event("POST", "/t/payments", body=body))
    assert_problem(response, problem, 422, "validation_error")
    assert [e["field"] for e in problem["errors"]] == [field]


@pytest.mark.parametrize("body", ["{", "[]", '"text"', "null", ""])
def test_a_body_that_is_not_a_json_object_is_422(body: str) -> None:
    _, problem, response = call(event("POST", "/t/payments", body=body))
    assert_problem(response, problem, 422, "validation_error")


def test_a_bad_source_type_is_not_echoed() -> None:
    body = {
        "amount": 100,
        "currency": "USD",
        "payee_id": "usr_01JCQ3H1J3K5M7N9P1Q3R5S7T9",
        "source": {"type": "4242424242424242"},
    }
    _, problem, response = call(event("POST", "/t/payments", body=json.dumps(body)))
    assert_problem(response, problem, 422, "validation_error")
    assert "4242424242424242" not in response["body"]


def test_an_overflowing_integer_is_422_not_500() -> None:
    body = '{"amount": 1' + "0" * 5000 + ', "currency": "USD"}'
    _, problem, response = call(event("POST", "/t/payments", body=body))
    assert_problem(response, problem, 422, "validation_error")


def test_an_unsupported_content_type_is_a_4xx_not_500() -> None:
    body = '{"amount": 100}'
    status, _, _ = call(event("POST", "/t/payments", body=body, content_type="text/plain"))
    assert 400 <= status < 500


# --- media types and duplicate keys ---------------------------------------------------------

USER_BODY = '{"email": "a@example.com", "password": "correct horse battery", "name": "A"}'
NOT_JSON_TYPES = [
    "multipart/form-data",  # no boundary: Powertools raised (a 500 with a traceback)
    "multipart/form-data; boundary=x",
    "application/x-www-form-urlencoded",
    "application/jsonx",
    "application/json-patch+json",
    "application/problem+json",
    "text/json",
    "text/plain",
    "application",
    "application/json/x",
    "application/json; charset=latin-1",
    "",
]


@pytest.mark.parametrize("content_type", NOT_JSON_TYPES)
@pytest.mark.parametrize("path", ["/t/users", "/t/raw"])
def test_a_body_that_is_not_json_is_415(content_type: str, path: str) -> None:
    # Given a body sent with a media type that is not exactly application/json
    evt = event("POST", path, body=USER_BODY, content_type=None)
    evt["headers"]["Content-Type"] = content_type
    evt["multiValueHeaders"]["Content-Type"] = [content_type]
    # When it reaches a JSON route (one with a body model, or one that reads the body itself)
    _, problem, response = call(evt)
    # Then it is refused as unsupported, in problem+json, with nothing of the input echoed
    assert_problem(response, problem, 415, "unsupported_media_type")
    assert "errors" not in problem


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "Application/JSON; Charset=UTF-8",
        "APPLICATION/JSON",
        'application/json; charset="utf-8"',
        "application/json ; CHARSET=utf-8",
        "  application/json  ",
    ],
)
def test_json_media_types_are_compared_case_insensitively(content_type: str) -> None:
    status, body, _ = call(event("POST", "/t/users", body=USER_BODY, content_type=content_type))
    assert (status, body) == (200, {"ok": True})


def test_a_header_named_in_another_case_is_the_same_header() -> None:
    evt = event("POST", "/t/users", body=USER_BODY, content_type=None)
    evt["headers"]["content-TYPE"] = "multipart/form-data"
    evt["multiValueHeaders"]["content-TYPE"] = ["multipart/form-data"]
    _, problem, response = call(evt)
    assert_problem(response, problem, 415, "unsupported_media_type")


def test_a_second_content_type_that_is_not_json_is_415() -> None:
    evt = event("POST", "/t/users", body=USER_BODY)
    evt["multiValueHeaders"]["Content-Type"] = ["application/json", "multipart/form-data"]
    _, problem, response = call(evt)
    assert_problem(response, problem, 415, "unsupported_media_type")


def test_without_a_content_type_a_body_is_taken_as_json() -> None:
    status, body, _ = call(event("POST", "/t/users", body=USER_BODY, content_type=None))
    assert (status, body) == (200, {"ok": True})


@pytest.mark.parametrize("content_type", ["multipart/form-data", "text/plain"])
def test_the_content_type_of_a_request_without_a_body_is_ignored(content_type: str) -> None:
    # A GET (or a body-less POST) with a stray Content-Type is not a 415, nor a 500
    status, _, _ = call(event("GET", "/t/me", content_type=content_type))
    assert status == 401
    _, problem, response = call(event("POST", "/t/users", content_type=content_type))
    assert_problem(response, problem, 422, "validation_error")


def test_the_event_given_to_resolve_is_not_changed() -> None:
    evt = event("POST", "/t/users", body=USER_BODY, content_type="Application/JSON")
    before = json.dumps(evt, sort_keys=True)
    call(evt)
    assert json.dumps(evt, sort_keys=True) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"amount": 1, "amount": 100000000, "currency": "USD"}', "amount"),
        ('{"email": "a@example.com", "password": "x", "password": "y", "name": "A"}', "password"),
        ('{"card": {"number": "4242424242424242", "number": "4000000000000002"}}', "number"),
        ('{"source": {"type": "balance", "type": "card"}}', "type"),
        ('[{"a": 1, "a": 1}]', "a"),
        ('{"4242424242424242": 1, "4242424242424242": 2}', "<unknown>"),
    ],
)
def test_a_duplicated_key_anywhere_is_422(body: str, field: str) -> None:
    # Given a body with a key twice (parsers disagree on which one wins)
    _, problem, response = call(event("POST", "/t/payments", body=body))
    # Then it is refused, naming the key only when it is a plain name
    assert_problem(response, problem, 422, "validation_error")
    assert problem["errors"] == [{"field": field, "message": "appears more than once"}]
    assert "4242424242424242" not in response["body"]


def test_the_same_key_in_different_objects_is_not_a_duplicate() -> None:
    body = '{"amount": 1, "currency": "USD", "payee_id": "usr_1", "source": {"type": "balance"}}'
    _, problem, _ = call(event("POST", "/t/payments", body=body))
    assert all(e["message"] != "appears more than once" for e in problem.get("errors", []))
    nested = '{"a": {"type": 1}, "b": {"type": 2}}'
    assert parse_json(nested) == {"a": {"type": 1}, "b": {"type": 2}}


# --- caching --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "evt",
    [
        event("POST", "/t/users", body=USER_BODY),
        event("GET", "/t/me"),
        event("GET", "/t/boom"),
        event("POST", "/t/raw", body="x", content_type="text/plain"),
        event("POST", "/t/raw", body="x" * (MAX_BODY_BYTES + 1)),
    ],
    ids=["ok", "401", "500", "415", "413"],
)
def test_no_response_may_be_cached(evt: dict[str, Any]) -> None:
    # Every response is private to its caller, and some carry tokens (RFC 6749 5.1)
    _, _, response = call(evt)
    assert header(response, "Cache-Control") == "no-store"
    assert header(response, "Pragma") == "no-cache"


# --- body limit -----------------------------------------------------------------------------


def test_a_body_of_exactly_64_kib_is_accepted() -> None:
    status, body, _ = call(event("POST", "/t/raw", body="x" * MAX_BODY_BYTES))
    assert MAX_BODY_BYTES == 64 * 1024
    assert (status, body) == (200, {"size": MAX_BODY_BYTES})


@pytest.mark.parametrize(
    "payload",
    ["x" * (MAX_BODY_BYTES + 1), "é" * (MAX_BODY_BYTES // 2 + 1), "x" * (MAX_BODY_BYTES * 4)],
    ids=["one-byte-over", "multibyte-over-in-bytes", "much-larger"],
)
def test_a_body_over_64_kib_is_413(payload: str) -> None:
    # Given a body larger than 64 KiB (counted in UTF-8 bytes)
    _, problem, response = call(event("POST", "/t/raw", body=payload))
    # Then it is refused before any handler runs
    assert_problem(response, problem, 413, "payload_too_large")


def test_the_body_limit_applies_before_validation() -> None:
    payload = json.dumps({"card": {"number": CARD_NUMBER}, "pad": "x" * MAX_BODY_BYTES})
    _, problem, response = call(event("POST", "/t/cards", body=payload))
    assert_problem(response, problem, 413, "payload_too_large")
    assert CARD_NUMBER not in response["body"]


# --- caller ---------------------------------------------------------------------------------

USER = {"user_id": "usr_01JCQ3F6Z4V8T2K9M1N5P7R3S6", "session_id": "ses_01JCQ3F7", "role": "user"}


def test_the_caller_comes_from_the_authorizer_context() -> None:
    status, body, _ = call(event("GET", "/t/me", authorizer={**USER, "role": "admin"}))
    assert status == 200
    assert body == {**USER, "role": "admin"}


@pytest.mark.parametrize(
    "context",
    [
        {},
        {**USER, "user_id": ""},
        {k: v for k, v in USER.items() if k != "session_id"},
        {**USER, "role": "superuser"},
        {k: v for k, v in USER.items() if k != "role"},
    ],
    ids=["none", "empty-user", "no-session", "bad-role", "no-role"],
)
def test_without_a_valid_authorizer_context_the_caller_is_unauthenticated(
    context: dict[str, Any],
) -> None:
    _, body, response = call(event("GET", "/t/me", authorizer=context))
    assert_problem(response, body, 401, "unauthenticated")


# --- Idempotency-Key ------------------------------------------------------------------------


def test_missing_idempotency_key_is_400() -> None:
    _, body, response = call(event("POST", "/t/idempotency", body="{}"))
    assert_problem(response, body, 400, "idempotency_key_missing")


def test_empty_idempotency_key_counts_as_missing() -> None:
    evt = event("POST", "/t/idempotency", body="{}", headers={"Idempotency-Key": ""})
    _, body, response = call(evt)
    assert_problem(response, body, 400, "idempotency_key_missing")


PRINTABLE = "".join(chr(c) for c in range(32, 127))


@pytest.mark.parametrize(
    "key",
    [
        "k",
        "b3e4f5a6-7c8d-4e9f-a0b1-c2d3e4f5a6b7",
        "a" * 255,
        (PRINTABLE * 3)[:255],
    ],
    ids=["one", "uuid", "255", "255-every-printable"],
)
def test_a_printable_key_of_1_to_255_characters_is_accepted(key: str) -> None:
    evt = event("POST", "/t/idempotency", body="{}", headers={"Idempotency-Key": key})
    status, body, _ = call(evt)
    assert (status, body) == (200, {"key": key})


def test_the_header_name_is_case_insensitive() -> None:
    evt = event("POST", "/t/idempotency", body="{}", headers={"IDEMPOTENCY-KEY": "abc"})
    assert call(evt)[:2] == (200, {"key": "abc"})


@pytest.mark.parametrize(
    "key",
    ["a" * 256, "a" * 1000, "tab\there", "new\nline", "nul\x00", "del\x7f", "caf\u00e9", "\u2603"],
    ids=["256", "1000", "tab", "newline", "nul", "del", "latin1", "snowman"],
)
def test_an_over_long_or_non_printable_key_is_422(key: str) -> None:
    evt = event("POST", "/t/idempotency", body="{}", headers={"Idempotency-Key": key})
    _, body, response = call(evt)
    assert_problem(response, body, 422, "validation_error")
    assert body["errors"][0]["field"] == "Idempotency-Key"


def test_json_nested_too_deep_to_parse_is_422_not_500() -> None:
    _, problem, response = call(event("POST", "/t/payments", body="[" * 20_000 + "]" * 20_000))
    assert_problem(response, problem, 422, "validation_error")


def test_an_unknown_field_whose_name_is_not_an_identifier_is_not_echoed() -> None:
    body = {"amount": 100, "currency": "USD", "4242424242424242": 1}
    _, problem, response = call(event("POST", "/t/payments", body=json.dumps(body)))
    assert_problem(response, problem, 422, "validation_error")
    assert "4242424242424242" not in response["body"]


admin_app = CashewResolver(admin_only=True)


@admin_app.post("/t/admin")
def admin_only(body: PaymentRequest) -> dict[str, Any]:
    return {"ran": True}


@pytest.mark.parametrize(
    ("authorizer", "status", "code"),
    [
        ({}, 401, "unauthenticated"),
        ({"user_id": "usr_1", "session_id": "ses_1", "role": "user"}, 403, "forbidden"),
    ],
)
@pytest.mark.parametrize("body", ['{"amount": 1.5}', "{", None])
def test_an_admin_only_app_refuses_others_before_validating_anything(
    authorizer: dict[str, Any], status: int, code: str, body: str | None
) -> None:
    # Given a request that would fail validation (or would not), from a non-admin
    response = admin_app.resolve(event("POST", "/t/admin", body=body, authorizer=authorizer), None)  # type: ignore[arg-type]
    # Then it is refused for who they are, and nothing about the route is said
    problem = json.loads(response["body"])
    assert_problem(response, problem, status, code)
    assert "errors" not in problem
    assert header(response, "X-Request-Id") == REQUEST_ID


def test_an_admin_only_app_serves_admins() -> None:
    admin = {"user_id": "usr_1", "session_id": "ses_1", "role": "admin"}
    response = admin_app.resolve(event("POST", "/t/admin", body="{}", authorizer=admin), None)  # type: ignore[arg-type]
    assert response["statusCode"] == 422  # an admin's bad body is validated as usual
