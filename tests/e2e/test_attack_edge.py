"""Attacks on the HTTP edge over HTTP against the local stack: media types, duplicate keys,
NumericDate claims, caching of tokens, unrouted methods."""

from __future__ import annotations

import json
import time
import uuid

import boto3
import jwt
import pytest

from cashew.auth.keys import key_from_seed
from local.cfn import REGION
from tests.e2e.conftest import PASSWORD, add_card, balance

pytestmark = pytest.mark.e2e


def _assert_problem(reply, status, code):
    assert reply.status_code == status, reply.text
    assert reply.headers["Content-Type"] == "application/problem+json"
    body = reply.json()
    assert (body["status"], body["code"]) == (status, code)
    assert "Traceback" not in reply.text
    return body


def _no_traceback_since(stack, offset):
    assert "Traceback" not in stack.logs()[offset:]


@pytest.mark.parametrize("content_type", ["multipart/form-data", "application/jsonx"])
def test_a_body_that_is_not_json_is_415_on_public_and_guarded_routes(stack, new_user, content_type):
    user = new_user()
    offset = len(stack.logs())
    headers = {"Content-Type": content_type}
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    fresh = json.dumps({"email": email, "password": PASSWORD, "name": "X"})
    register = stack.request("POST", "/v1/users", data=fresh, headers=headers)
    login_body = json.dumps({"email": user.email, "password": PASSWORD})
    login = stack.request("POST", "/v1/auth/login", data=login_body, headers=headers)
    guarded = stack.request(
        "PATCH", "/v1/users/me", user.token, data='{"name": "Mallory"}', headers=headers
    )
    for reply in (register, login, guarded):
        _assert_problem(reply, 415, "unsupported_media_type")
    _no_traceback_since(stack, offset)
    # and nothing was written: the account does not exist, the name did not change
    me = stack.request("GET", "/v1/users/me", user.token).json()
    assert me["name"] != "Mallory"
    assert (
        stack.request(
            "POST", "/v1/users", data=fresh, headers={"Content-Type": "application/json"}
        ).status_code
        == 201
    )


def test_a_mixed_case_json_media_type_is_json(stack, new_user):
    user = new_user()
    reply = stack.request(
        "POST",
        "/v1/auth/login",
        data=json.dumps({"email": user.email, "password": PASSWORD}),
        headers={"Content-Type": "Application/JSON; Charset=UTF-8"},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["token_type"] == "Bearer"


def test_two_amounts_on_a_top_up_are_422_and_move_nothing(stack, new_user):
    user = new_user()
    card = add_card(stack, user)
    body = f'{{"amount": 100, "amount": 400000, "currency": "USD", "payment_method_id": "{card}"}}'
    reply = stack.request(
        "POST",
        "/v1/top-ups",
        user.token,
        data=body,
        headers={"Content-Type": "application/json", "Idempotency-Key": str(uuid.uuid4())},
    )
    _assert_problem(reply, 422, "validation_error")
    assert balance(stack, user) == 0


def test_two_passwords_on_a_login_are_422(stack, new_user):
    user = new_user()
    body = f'{{"email": "{user.email}", "password": "wrong password!", "password": "{PASSWORD}"}}'
    reply = stack.request(
        "POST", "/v1/auth/login", data=body, headers={"Content-Type": "application/json"}
    )
    problem = _assert_problem(reply, 422, "validation_error")
    assert "access_token" not in problem


def test_token_responses_are_never_cached(stack, new_user):
    user = new_user()
    login = stack.request(
        "POST", "/v1/auth/login", json={"email": user.email, "password": PASSWORD}
    )
    refreshed = stack.request(
        "POST", "/v1/auth/refresh", json={"refresh_token": login.json()["refresh_token"]}
    )
    for reply in (login, refreshed):
        assert reply.status_code == 200, reply.text
        assert reply.headers["Cache-Control"] == "no-store"
        assert reply.headers["Pragma"] == "no-cache"


def _signing_key(stack):
    client = boto3.client(
        "secretsmanager",
        endpoint_url=stack.aws_url,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    for secret in client.list_secrets()["SecretList"]:
        value = json.loads(client.get_secret_value(SecretId=secret["ARN"])["SecretString"])
        if isinstance(value, dict) and len(str(value.get("current", ""))) >= 32:
            return key_from_seed(value["current"])
    pytest.skip("the stack's JWT secret is not reachable")


@pytest.mark.parametrize(
    "claims",
    [
        {"exp": "NOW+900"},
        {"iat": "NOW"},
        {"iat": True},
        {"iat": False},
        {"exp": True},
    ],
    ids=["exp-string", "iat-string", "iat-true", "iat-false", "exp-true"],
)
def test_tokens_whose_dates_are_not_numbers_are_401(stack, new_user, claims):
    user = new_user()
    key = _signing_key(stack)
    valid = jwt.decode(user.token, options={"verify_signature": False})
    now = int(time.time())
    forged = {**valid}
    for name, value in claims.items():
        forged[name] = (
            str(now + 900) if value == "NOW+900" else str(now) if value == "NOW" else value
        )
    token = jwt.encode(
        forged, key.private, algorithm="EdDSA", headers={"kid": key.kid, "typ": "at+jwt"}
    )
    control = jwt.encode(
        valid, key.private, algorithm="EdDSA", headers={"kid": key.kid, "typ": "at+jwt"}
    )
    assert stack.request("GET", "/v1/users/me", control).status_code == 200
    # (the authorizer refuses by raising "Unauthorized", as API Gateway's protocol has it)
    reply = stack.request("GET", "/v1/users/me", token)
    assert reply.status_code == 401, reply.text
    assert reply.json()["code"] == "unauthenticated"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nowhere"),
        ("DELETE", "/v1/health"),
        ("PUT", "/v1/auth/login"),
        ("TRACE", "/v1/users/me"),
        ("PROPFIND", "/v1/health"),
    ],
)
@pytest.mark.parametrize("with_token", [False, True])
def test_unrouted_methods_and_paths_are_404_problems(stack, new_user, method, path, with_token):
    token = new_user().token if with_token else None
    _assert_problem(stack.request(method, path, token), 404, "not_found")
