"""The auth functions of issue 13 reach only their own items of the sessions table: the
public ones (login, reset, login/mfa), the MFA functions behind the authorizer (enrol,
confirm, disable) and the authorizer itself (whose read of the accounts table is the
profile's password version only).

The sessions table holds the sessions (`ses_...`: whoever can put one, with a refresh hash
of their choosing, can mint tokens for any user, admins included), the reset tokens'
hashes (`RESET#`), the email-verification tokens' hashes (`VERIFY#`), the TOTP factors
(`MFA#`), the MFA challenges (`MFA_TOKEN#`) and the attempt counters (`LOGIN#`, `RESETREQ#`,
`VERIFYREQ#`). Each grant these unauthenticated functions hold
on it is conditioned to the partition keys they use, and every call they make is allowed
by those conditions."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from fnmatch import fnmatchcase
from typing import Any

import pytest

from cashew import aws
from local.cfn import load_template
from tests.integration.test_password_reset import _confirm, _login, _request, _token

PUBLIC_AUTH = (
    "LoginFunction", "PasswordResetFunction", "PasswordResetConfirmFunction", "LoginMfaFunction",
    "RegisterFunction", "VerifyEmailFunction",
)  # fmt: skip
_TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem",
             "ConditionCheck": "ConditionCheckItem"}  # fmt: skip


def _statements(function_id: str) -> list[dict[str, Any]]:
    return [
        statement
        for policy in load_template()["Resources"][function_id]["Properties"]["Policies"]
        for statement in policy["Statement"]
        if statement["Resource"] == {"Fn::GetAtt": ["SessionsTable", "Arn"]}
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def _leading(statement: dict[str, Any]) -> list[str] | None:
    return (
        statement.get("Condition", {})
        .get("ForAllValues:StringLike", {})
        .get("dynamodb:LeadingKeys")
    )


def _allowed(function_id: str, action: str, pk: str) -> bool:
    return any(
        action in _actions(s) and any(fnmatchcase(pk, p) for p in (_leading(s) or ["*"]))
        for s in _statements(function_id)
    )


@pytest.mark.parametrize("function_id", PUBLIC_AUTH)
def test_every_sessions_table_grant_of_the_public_auth_functions_names_its_keys(function_id):
    statements = _statements(function_id)
    assert statements
    for statement in statements:
        leading = _leading(statement)
        assert leading, (function_id, statement)
        assert "*" not in leading and all(re.fullmatch(r"[A-Za-z_#]+\*", p) for p in leading)
    # A function that never creates a session may not put one
    if function_id not in ("LoginFunction", "LoginMfaFunction"):
        assert not _allowed(function_id, "dynamodb:PutItem", "ses_01J8Z6Q9V7X3K2M4N5P6R7S8T9")
    # None but the factor's readers may read a factor or a reset token's hash
    assert not _allowed(function_id, "dynamodb:GetItem", "ses_01J8Z6Q9V7X3K2M4N5P6R7S8T9")


# Behind the authorizer, but any caller's request reaches them: a free grant would let a bug
# or an injected key read or write any user's factor, session or reset token.
MFA_FUNCTIONS = ("MfaEnrolFunction", "MfaConfirmFunction", "MfaDisableFunction")
SESSION = "ses_01J8Z6Q9V7X3K2M4N5P6R7S8T9"


@pytest.mark.parametrize("function_id", (*MFA_FUNCTIONS, "AuthorizerFunction"))
def test_every_sessions_table_grant_of_the_mfa_functions_and_the_authorizer_names_its_keys(
    function_id,
):
    statements = _statements(function_id)
    assert statements
    for statement in statements:
        leading = _leading(statement)
        assert leading, (function_id, statement)
        assert "*" not in leading and all(re.fullmatch(r"[A-Za-z_#]+\*", p) for p in leading)
    others = ("RESET#usr_x", "MFA_TOKEN#abc", "RT#abc", "RESETREQ#abc")
    for action in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "BatchGetItem"):
        for pk in others:
            assert not _allowed(function_id, f"dynamodb:{action}", pk), (function_id, action, pk)
    if function_id == "AuthorizerFunction":  # sessions only, and only read
        assert {a for s in statements for a in _actions(s)} == {"dynamodb:BatchGetItem"}
        assert not _allowed(function_id, "dynamodb:BatchGetItem", "MFA#usr_x")
        assert not _allowed(function_id, "dynamodb:BatchGetItem", "LOGIN#abc")
    else:  # the factor and the login attempts; never a session
        for action in ("GetItem", "PutItem", "UpdateItem", "DeleteItem"):
            assert not _allowed(function_id, f"dynamodb:{action}", SESSION), (function_id, action)


def test_the_authorizers_read_of_the_accounts_table_is_the_password_version_only():
    (grant,) = [
        statement
        for policy in load_template()["Resources"]["AuthorizerFunction"]["Properties"]["Policies"]
        for statement in policy["Statement"]
        if statement["Resource"] == {"Fn::GetAtt": ["AccountsTable", "Arn"]}
    ]
    assert _actions(grant) == ["dynamodb:BatchGetItem"]
    condition = grant["Condition"]
    assert condition["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] == ["USER#*"]
    assert condition["ForAllValues:StringEquals"]["dynamodb:Attributes"] == [
        "pk", "sk", "password_version",
    ]  # fmt: skip
    # BatchGetItem carries no Select: the key is absent, so only ...IfExists lets it through
    assert condition["StringEqualsIfExists"]["dynamodb:Select"] == "SPECIFIC_ATTRIBUTES"
    assert "StringEquals" not in condition


class _Calls:
    def __init__(self, table: str) -> None:
        self.table = table
        self.calls: list[tuple[str, str]] = []
        self.projections: list[tuple[str, set[str]]] = []  # BatchGetItem of other tables

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "TransactWriteItems":
            for item in params["TransactItems"]:
                ((kind, body),) = item.items()
                self._note(_TRANSACT[kind], body)
        elif model.name in ("GetItem", "PutItem", "UpdateItem", "DeleteItem"):
            self._note(model.name, params)
        elif model.name == "BatchGetItem":
            for table, entry in params["RequestItems"].items():
                for key in entry["Keys"]:
                    self._note(model.name, {"TableName": table, "Key": key})
                    if table != self.table:  # what it reads of another table, by name
                        names = entry.get("ExpressionAttributeNames", {})
                        projection = entry.get("ProjectionExpression", "")
                        self.projections.append(
                            (key["pk"]["S"], {names.get(n.strip(), n.strip())
                                              for n in projection.split(",") if n.strip()})
                        )  # fmt: skip

    def _note(self, action: str, body: dict[str, Any]) -> None:
        if body["TableName"] == self.table:
            key = body.get("Key") or body["Item"]
            self.calls.append((f"dynamodb:{action}", key["pk"]["S"]))


@contextmanager
def _recording(stack) -> Iterator[_Calls]:
    calls = _Calls(stack.env["CASHEW_SESSIONS_TABLE"])
    aws.reset()
    aws.session().events.register("before-parameter-build", calls)
    try:
        yield calls
    finally:
        aws.reset()


def test_every_sessions_table_call_of_the_public_auth_functions_is_allowed(stack, new_user):
    user = new_user()
    with _recording(stack) as reset:
        assert _request(stack, f"nobody-{user.id.lower()}@example.com").status == 202
        token = _token(stack, user.email)
    with _recording(stack) as confirm:
        assert _confirm(stack, "usr_01J8Z6Q9V7X3K2M4N5P6R7S8T9.x").status == 400
        assert _confirm(stack, token).status == 204
    with _recording(stack) as login:
        assert _login(stack, user.email, "a wrong password, surely").status == 401
        assert _login(stack, user.email, "a brand new horse battery staple").status == 200
    for function_id, recorded in (
        ("PasswordResetFunction", reset),
        ("PasswordResetConfirmFunction", confirm),
        ("LoginFunction", login),
    ):
        assert recorded.calls, function_id
        refused = [c for c in recorded.calls if not _allowed(function_id, *c)]
        assert refused == [], function_id


def test_every_sessions_table_call_of_the_mfa_login_is_allowed(stack, new_user, monkeypatch):
    import pyotp

    from cashew.config import get_settings
    from tests.integration.test_mfa import _call, _enrolled, _step_back
    from tests.integration.test_mfa import _login as login

    monkeypatch.setenv("CASHEW_LOGIN_MAX_FAILURES", "50")
    get_settings.cache_clear()
    # Given a user with MFA on, signing in: a wrong code, a right one, a recovery code
    user = new_user()
    secret, recovery = _enrolled(stack, user)
    challenges = [login(stack, user.email).body["mfa_token"] for _ in range(2)]
    with _recording(stack) as second_step:
        wrong = _call(
            stack, "LoginMfaFunction", "login_mfa", mfa_token=challenges[0], code="000000"
        )
        assert wrong.status == 401
        _step_back(stack, user)
        code = pyotp.TOTP(secret).now()
        right = _call(stack, "LoginMfaFunction", "login_mfa", mfa_token=challenges[0], code=code)
        assert right.status == 200, right.body
        used = _call(
            stack,
            "LoginMfaFunction",
            "login_mfa",
            mfa_token=challenges[1],
            recovery_code=recovery[0],
        )
        assert used.status == 200, used.body
    get_settings.cache_clear()
    # Then every sessions-table call the second step made is allowed by its conditions
    assert second_step.calls
    refused = [c for c in second_step.calls if not _allowed("LoginMfaFunction", *c)]
    assert refused == [], sorted(set(second_step.calls))


def test_every_sessions_table_call_of_the_verification_functions_is_allowed(stack):
    from tests.integration.test_email_verification import _register, _token_of, _verify

    # Given a registration (its token written), and a verify of a wrong then the right token
    with _recording(stack) as register:
        created = _register(stack)
    with _recording(stack) as verify:
        assert _verify(stack, "usr_01J8Z6Q9V7X3K2M4N5P6R7S8T9.x").status == 400
        assert _verify(stack, _token_of(created["email"])).status == 204
    # Then every sessions-table call they made is allowed by their keys' conditions
    for function_id, recorded in (("RegisterFunction", register), ("VerifyEmailFunction", verify)):
        assert recorded.calls, function_id
        refused = [c for c in recorded.calls if not _allowed(function_id, *c)]
        assert refused == [], function_id
    # ... and neither may touch a reset token, whose hash the verify must never be able to use
    for function_id in ("RegisterFunction", "VerifyEmailFunction"):
        for action in ("dynamodb:GetItem", "dynamodb:DeleteItem", "dynamodb:PutItem"):
            assert not _allowed(function_id, action, "RESET#usr_01J8Z6Q9V7X3K2M4N5P6R7S8T9")


def test_every_sessions_table_call_of_the_mfa_functions_and_the_authorizer_is_allowed(
    stack, new_user, monkeypatch
):
    import pyotp

    from cashew.config import get_settings
    from tests.integration.conftest import PASSWORD, authorize
    from tests.integration.test_mfa import _call, _step_back

    monkeypatch.setenv("CASHEW_LOGIN_MAX_FAILURES", "50")
    get_settings.cache_clear()
    # Given a user who enrols (a wrong password first), confirms (a wrong code first) and
    # turns MFA off (a wrong code first), each step run as its function
    user = new_user()
    recorded: dict[str, _Calls] = {}
    with _recording(stack) as recorded["MfaEnrolFunction"]:
        wrong = _call(stack, "MfaEnrolFunction", "mfa_enrol", user, password="not it at all!")
        assert wrong.status == 401
        enrolled = _call(stack, "MfaEnrolFunction", "mfa_enrol", user, password=PASSWORD)
        assert enrolled.status == 200, enrolled.body
    secret = enrolled.body["secret"]
    with _recording(stack) as recorded["MfaConfirmFunction"]:
        assert _call(stack, "MfaConfirmFunction", "mfa_confirm", user, code="000000").status == 401
        code = pyotp.TOTP(secret).now()
        confirmed = _call(stack, "MfaConfirmFunction", "mfa_confirm", user, code=code)
        assert confirmed.status == 200, confirmed.body
    _step_back(stack, user)
    with _recording(stack) as recorded["MfaDisableFunction"]:
        wrong = _call(
            stack, "MfaDisableFunction", "mfa_disable", user, password=PASSWORD, code="000000"
        )
        assert wrong.status == 401
        code = pyotp.TOTP(secret).now()
        done = _call(stack, "MfaDisableFunction", "mfa_disable", user, password=PASSWORD, code=code)
        assert done.status == 204, done.body
    with _recording(stack) as recorded["AuthorizerFunction"]:
        assert authorize(stack, user.access_token)["principalId"] == user.id
    get_settings.cache_clear()
    # Then every sessions-table call each made is allowed by its conditions
    for function_id, calls in recorded.items():
        assert calls.calls, function_id
        refused = [c for c in calls.calls if not _allowed(function_id, *c)]
        assert refused == [], (function_id, sorted(set(calls.calls)))
    # ... and the authorizer read the caller's profile's password version and nothing else
    # (its key tells a profile without a version from no profile)
    assert recorded["AuthorizerFunction"].projections == [
        (f"USER#{user.id}", {"pk", "password_version"})
    ]
