"""Login, the authorizer and the JWKS with their events/ samples."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher

from cashew import dynamo
from cashew.accounts import passwords
from tests.integration.conftest import PASSWORD, authorize


def test_login_issues_a_token_pair(stack, new_user):
    user = new_user()
    reply = stack.call(
        "LoginFunction", "auth/login.json", body={"email": user.email, "password": PASSWORD}
    )
    assert reply.status == 200
    assert reply.body["token_type"] == "Bearer"
    assert 0 < reply.body["expires_in"] <= 900
    assert reply.body["session_id"].startswith("ses_")
    # the refresh token is stored only as a hash
    item = dynamo.get_item(stack.env["CASHEW_SESSIONS_TABLE"], {"pk": reply.body["session_id"]})
    assert item is not None
    secret = reply.body["refresh_token"].split(".", 1)[1]
    assert secret not in repr(item)
    assert reply.body["refresh_token"] not in repr(item)


def test_unknown_email_and_wrong_password_look_the_same(stack, new_user):
    user = new_user()
    wrong = stack.call(
        "LoginFunction", "auth/login.json", body={"email": user.email, "password": "x" * 20}
    )
    unknown = stack.call(
        "LoginFunction",
        "auth/login.json",
        body={"email": "nobody@example.com", "password": "x" * 20},
    )
    assert wrong.status == unknown.status == 401
    assert wrong.code == "invalid_credentials"
    strip = lambda body: {k: v for k, v in body.items() if k != "request_id"}  # noqa: E731
    assert strip(wrong.body) == strip(unknown.body)


def test_authorizer_allows_a_live_session_and_passes_the_caller(stack, new_user):
    user = new_user()
    policy = authorize(stack, user.access_token)
    assert policy["principalId"] == user.id
    assert policy["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert policy["context"] == {"user_id": user.id, "session_id": user.session_id, "role": "user"}


@pytest.mark.parametrize(
    "token",
    ["", "garbage", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c3JfMSJ9.", "rt_ses_x.y"],
)
def test_authorizer_rejects_invalid_tokens(stack, token):
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(stack, token)


def test_authorizer_rejects_a_token_whose_session_was_revoked(stack, new_user):
    # Given a user whose session is revoked server-side
    user = new_user()
    stack.clients("dynamodb").update_item(
        TableName=stack.env["CASHEW_SESSIONS_TABLE"],
        Key={"pk": {"S": user.session_id}},
        UpdateExpression="SET revoked = :t",
        ExpressionAttributeValues={":t": {"BOOL": True}},
    )
    # When the still-unexpired access token is presented, Then it is refused at once
    with pytest.raises(Exception, match=r"^Unauthorized$"):
        authorize(stack, user.access_token)


def test_jwks_serves_the_verifying_key(stack, new_user):
    user = new_user()
    reply = stack.call("JwksFunction", "auth/jwks.json")
    assert reply.status == 200
    import jwt

    kid = jwt.get_unverified_header(user.access_token)["kid"]
    keys = {k["kid"]: k for k in reply.body["keys"]}
    assert keys[kid]["kty"] == "OKP" and keys[kid]["alg"] == "EdDSA"
    assert "d" not in keys[kid]
    key = jwt.PyJWK(keys[kid]).key
    claims = jwt.decode(user.access_token, key, algorithms=["EdDSA"], audience="cashew-api")
    assert claims["sub"] == user.id


def test_the_role_comes_from_the_live_session_not_the_token(stack, new_user):
    # Given a user whose session's role changes after the token was issued
    user = new_user()
    stack.clients("dynamodb").update_item(
        TableName=stack.env["CASHEW_SESSIONS_TABLE"],
        Key={"pk": {"S": user.session_id}},
        UpdateExpression="SET #role = :admin",
        ExpressionAttributeNames={"#role": "role"},
        ExpressionAttributeValues={":admin": {"S": "admin"}},
    )
    # Then the next request carries the session's role
    assert authorize(stack, user.access_token)["context"]["role"] == "admin"


def test_login_rehashes_a_password_stored_with_weaker_parameters(stack, new_user):
    # Given credentials hashed with parameters below the current ones
    user = new_user()
    weak = PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1).hash(PASSWORD)
    table, key = (
        stack.env["CASHEW_ACCOUNTS_TABLE"],
        {"pk": f"EMAIL#{user.email}", "sk": "CREDENTIALS"},
    )
    dynamo.update_item(table, key, "SET password_hash = :weak", {":weak": weak})
    # When the user logs in
    reply = stack.call(
        "LoginFunction", "auth/login.json", body={"email": user.email, "password": PASSWORD}
    )
    # Then the stored hash is upgraded to the current parameters
    assert reply.status == 200
    stored = dynamo.get_item(table, key)["password_hash"]
    assert stored != weak and not passwords.needs_rehash(stored)


def test_a_password_that_is_not_utf8_is_422_not_500(stack):
    body = '{"email": "x@example.com", "password": "aaaaaaaaaaaa\\ud800", "name": "X"}'
    assert stack.call("RegisterFunction", "accounts/register.json", raw_body=body).status == 422
    login = '{"email": "x@example.com", "password": "aaaaaaaaaaaa\\ud800"}'
    assert stack.call("LoginFunction", "auth/login.json", raw_body=login).status == 422
