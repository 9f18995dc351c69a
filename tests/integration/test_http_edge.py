"""The shared HTTP edge through real handlers: media types, duplicate keys, no-store."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from cashew.gateways.base import sign_webhook
from local.events import api_event
from tests.integration.conftest import PASSWORD, add_card, balance
from tests.support.lambda_runtime import reply


def _problem(answer, status, code):
    assert answer.status == status, answer.body
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert (answer.body["status"], answer.body["code"]) == (status, code)


@pytest.mark.parametrize("content_type", ["multipart/form-data", "application/jsonx", "text/json"])
def test_register_and_login_refuse_a_body_that_is_not_json(stack, new_user, content_type):
    # Given a user, and an unauthenticated JSON route sent another media type
    user = new_user()
    body = json.dumps({"email": user.email, "password": PASSWORD})
    headers = {"Content-Type": content_type}
    login = stack.call("LoginFunction", "auth/login.json", raw_body=body, headers=headers)
    email = f"u{uuid.uuid4().hex[:10]}@example.com"
    fresh = json.dumps({"email": email, "password": PASSWORD, "name": "N"})
    register = stack.call(
        "RegisterFunction", "accounts/register.json", raw_body=fresh, headers=headers
    )
    # Then both are 415, and no account was made
    _problem(login, 415, "unsupported_media_type")
    _problem(register, 415, "unsupported_media_type")
    retry = stack.call("RegisterFunction", "accounts/register.json", raw_body=fresh)
    assert retry.status == 201


def test_a_mixed_case_json_media_type_logs_in(stack, new_user):
    user = new_user()
    body = json.dumps({"email": user.email, "password": PASSWORD})
    headers = {"Content-Type": "Application/JSON; Charset=UTF-8"}
    answer = stack.call("LoginFunction", "auth/login.json", raw_body=body, headers=headers)
    assert answer.status == 200
    assert answer.body["token_type"] == "Bearer"


def test_token_responses_are_not_cached(stack, new_user):
    user = new_user()
    login = stack.call(
        "LoginFunction", "auth/login.json", body={"email": user.email, "password": PASSWORD}
    )
    refreshed = stack.call(
        "RefreshFunction", "auth/refresh.json", body={"refresh_token": login.body["refresh_token"]}
    )
    for answer in (login, refreshed):
        assert answer.status == 200
        assert (answer.headers["Cache-Control"], answer.headers["Pragma"]) == (
            "no-store",
            "no-cache",
        )


def test_a_duplicated_password_is_422_and_no_login(stack, new_user):
    user = new_user()
    body = f'{{"email": "{user.email}", "password": "x", "password": "{PASSWORD}"}}'
    answer = stack.call("LoginFunction", "auth/login.json", raw_body=body)
    _problem(answer, 422, "validation_error")
    assert answer.body["errors"] == [{"field": "password", "message": "appears more than once"}]


def test_a_top_up_with_two_amounts_is_422_and_moves_nothing(stack, new_user):
    user = new_user()
    card = add_card(stack, user)
    body = f'{{"amount": 100, "amount": 100000, "currency": "USD", "payment_method_id": "{card}"}}'
    answer = stack.call(
        "CreateTopUpFunction",
        "payments/create_top_up.json",
        raw_body=body,
        authorizer=user.authorizer,
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )
    _problem(answer, 422, "validation_error")
    assert balance(stack, user) == 0


def test_a_signed_webhook_with_a_duplicated_key_is_422(stack):
    body = '{"id": "evt_sbx_1", "id": "evt_sbx_2", "type": "charge.succeeded", "data": {}}'
    header = sign_webhook(body.encode(), stack.gateway_webhook_secret(), int(time.time()))
    sent = api_event(
        "payments/gateway_webhook.json", raw_body=body, headers={"Gateway-Signature": header}
    )
    _problem(reply(stack.invoke("GatewayWebhookFunction", sent)), 422, "validation_error")


def test_a_webhook_that_is_not_json_media_type_is_415(stack):
    body = '{"id": "evt_sbx_1"}'
    header = sign_webhook(body.encode(), stack.gateway_webhook_secret(), int(time.time()))
    sent = api_event(
        "payments/gateway_webhook.json",
        raw_body=body,
        headers={"Gateway-Signature": header, "Content-Type": "multipart/form-data"},
    )
    _problem(reply(stack.invoke("GatewayWebhookFunction", sent)), 415, "unsupported_media_type")
