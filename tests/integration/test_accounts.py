"""Accounts handlers with their events/ samples against the embedded endpoint."""

from __future__ import annotations

import uuid

from tests.integration.conftest import PASSWORD

CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


def test_register_returns_the_user_with_a_normalised_email(stack):
    # Given a new email in mixed case
    email = f"Ada.{uuid.uuid4().hex[:8]}@Example.COM"
    # When the user registers
    reply = stack.call(
        "RegisterFunction",
        "accounts/register.json",
        body={"email": email, "password": PASSWORD, "name": "Ada"},
    )
    # Then the user is created with a lower-case email, role user, and no password echoed
    assert reply.status == 201
    assert reply.body["email"] == email.lower()
    assert reply.body["id"].startswith("usr_")
    assert reply.body["role"] == "user"
    assert reply.body["settings"] == {"default_currency": "USD", "notify_email": True}
    assert "password" not in reply.body
    assert reply.headers["X-Request-Id"]


def test_register_twice_with_the_same_email_is_409(stack, new_user):
    user = new_user()
    reply = stack.call(
        "RegisterFunction",
        "accounts/register.json",
        body={"email": user.email.upper(), "password": PASSWORD, "name": "Again"},
    )
    assert reply.status == 409
    assert reply.code == "email_taken"
    assert reply.headers["Content-Type"] == "application/problem+json"


def test_register_rejects_unknown_fields_and_short_passwords_without_writing(stack):
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    cases = [
        {"email": email, "password": PASSWORD, "name": "Eve", "role": "admin"},
        {"email": email, "password": "short", "name": "Eve"},
        {"email": "not-an-email", "password": PASSWORD, "name": "Eve"},
    ]
    for body in cases:
        reply = stack.call("RegisterFunction", "accounts/register.json", body=body)
        assert reply.status == 422, body
        assert reply.code == "validation_error"
        assert reply.body["errors"]
    # nothing was written: the email is still free
    ok = stack.call(
        "RegisterFunction",
        "accounts/register.json",
        body={"email": email, "password": PASSWORD, "name": "Eve"},
    )
    assert ok.status == 201


def test_get_me_returns_the_callers_profile(stack, new_user):
    user = new_user("Grace")
    reply = stack.call("GetMeFunction", "accounts/get_me.json", authorizer=user.authorizer)
    assert reply.status == 200
    assert reply.body["id"] == user.id
    assert reply.body["name"] == "Grace"
    assert reply.body["phone"] is None


def test_protected_handler_without_authorizer_context_is_401(stack):
    reply = stack.call("GetMeFunction", "accounts/get_me.json")
    assert reply.status == 401
    assert reply.code == "unauthenticated"


def test_add_card_stores_only_token_metadata(stack, new_user):
    # Given a user
    user = new_user()
    # When they add a Mastercard
    card = {**CARD, "number": "5555555555554444", "cvc": "987"}
    reply = stack.call(
        "AddPaymentMethodFunction",
        "accounts/add_payment_method.json",
        body={"card": card},
        authorizer=user.authorizer,
    )
    # Then brand, last4 and a fingerprint come back
    assert reply.status == 201
    assert reply.body["card"]["brand"] == "mastercard"
    assert reply.body["card"]["last4"] == "4444"
    assert len(reply.body["card"]["fingerprint"]) == 32
    # And the stored item holds neither the number nor the cvc, only an encrypted token
    item = stack.clients("dynamodb").get_item(
        TableName=stack.env["CASHEW_ACCOUNTS_TABLE"],
        Key={"pk": {"S": f"USER#{user.id}"}, "sk": {"S": f"PM#{reply.body['id']}"}},
    )["Item"]
    flat = repr(item)
    assert "5555555555554444" not in flat
    assert "cvc" not in flat and "987" not in str(item.get("last4"))
    assert "tok_" not in flat  # the gateway token itself is encrypted
    assert set(item) >= {"token_ciphertext", "token_nonce", "token_data_key"}


def test_same_card_same_fingerprint(stack, new_user):
    user = new_user()
    first, second = (
        stack.call(
            "AddPaymentMethodFunction",
            "accounts/add_payment_method.json",
            body={"card": CARD},
            authorizer=user.authorizer,
        )
        for _ in range(2)
    )
    assert first.body["card"]["fingerprint"] == second.body["card"]["fingerprint"]
    assert first.body["id"] != second.body["id"]


def test_bad_cards_are_422(stack, new_user):
    user = new_user()
    bad = [
        {**CARD, "number": "4242424242424241"},  # Luhn
        {**CARD, "exp_year": 2020},  # expired
        {**CARD, "exp_month": 13},
        {**CARD, "cvc": "12"},
        {**CARD, "cvc": "12a"},
    ]
    for card in bad:
        reply = stack.call(
            "AddPaymentMethodFunction",
            "accounts/add_payment_method.json",
            body={"card": card},
            authorizer=user.authorizer,
        )
        assert reply.status == 422, card
        assert card["number"] not in str(reply.body)


def test_new_user_has_no_balances(stack, new_user):
    user = new_user()
    reply = stack.call(
        "ListBalancesFunction", "accounts/list_balances.json", authorizer=user.authorizer
    )
    assert reply.status == 200
    assert reply.body == {"data": []}
