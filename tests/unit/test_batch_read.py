"""The authorizer's one BatchGetItem (dynamo.batch_get) and its decision (access.py)."""

from __future__ import annotations

from typing import Any

import pytest

from cashew import aws, dynamo
from cashew.accounts.store import NO_PROFILE
from cashew.auth import access, sessions, tokens
from cashew.errors import UnauthenticatedError


class _Client:
    """Answers BatchGetItem from `rounds`: each (responses, unprocessed)."""

    def __init__(self, rounds: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        self.rounds = rounds
        self.requests: list[dict[str, Any]] = []

    def batch_get_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(RequestItems)
        responses, unprocessed = self.rounds.pop(0)
        return {"Responses": responses, "UnprocessedKeys": unprocessed}


def _reads() -> tuple[dynamo.Read[Any], dynamo.Read[Any]]:
    return (
        dynamo.Read("sessions", {"pk": "ses_1"}, lambda item: item),
        dynamo.Read("accounts", {"pk": "USER#u", "sk": "PROFILE"}, lambda item: item,
                    projection=("password_version",)),
    )  # fmt: skip


def test_one_call_reads_both_consistently_with_the_projection(monkeypatch):
    client = _Client([({"sessions": [{"pk": {"S": "ses_1"}}], "accounts": []}, {})])
    monkeypatch.setattr(aws, "dynamodb", lambda: client)
    session, version = dynamo.batch_get(*_reads())
    assert session == {"pk": "ses_1"} and version is None
    (request,) = client.requests
    assert request["sessions"]["ConsistentRead"] and request["accounts"]["ConsistentRead"]
    assert "ProjectionExpression" not in request["sessions"]
    assert request["accounts"]["ProjectionExpression"] == "#a0"
    assert request["accounts"]["ExpressionAttributeNames"] == {"#a0": "password_version"}


def test_unprocessed_keys_are_asked_again_and_then_refused(monkeypatch):
    monkeypatch.setattr(dynamo.time, "sleep", lambda _: None)
    left = {"accounts": {"Keys": [{"pk": {"S": "USER#u"}}], "ConsistentRead": True}}
    version_item = {"password_version": {"N": "3"}}
    client = _Client([({"sessions": [{"pk": {"S": "ses_1"}}]}, left),
                      ({"accounts": [version_item]}, {})])  # fmt: skip
    monkeypatch.setattr(aws, "dynamodb", lambda: client)
    assert dynamo.batch_get(*_reads()) == ({"pk": "ses_1"}, {"password_version": 3})
    assert client.requests[1] == left
    stuck = _Client([({}, left)] * dynamo.BATCH_GET_ATTEMPTS)
    monkeypatch.setattr(aws, "dynamodb", lambda: stuck)
    with pytest.raises(dynamo.Unprocessed):
        dynamo.batch_get(*_reads())


def _session(version: int) -> sessions.Session:
    return sessions.Session(
        id="ses_01JCQ3F7A2B4C6D8E0F2G4H6J8", user_id="usr_01JCQ3F6Z4V8T2K9M1N5P7R3S6",
        role="user", refresh_hash="h", created_at="2026-12-01T00:00:00Z",
        last_used_at="2026-12-01T00:00:00Z", user_agent="", expires_at=2**40, revoked=False,
        email="ada@example.com", password_version=version,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("session_version", "current", "allowed"),
    [
        (0, None, True),
        (2, None, True),
        (2, 2, True),
        (1, 2, False),
        (0, 1, False),
        (0, NO_PROFILE, False),
        (2, NO_PROFILE, False),
    ],  # no profile: no such user
)
def test_a_session_of_an_older_password_version_is_refused(
    monkeypatch, session_version, current, allowed
):
    session = _session(session_version)
    claims = tokens.AccessClaims(session.user_id, session.id, "user", 2**40)
    monkeypatch.setattr(tokens, "verify_access_token", lambda _: claims)
    monkeypatch.setattr(dynamo, "batch_get", lambda first, second: (session, current))
    if allowed:
        assert access.authenticate("Bearer x").session_id == session.id
    else:
        with pytest.raises(UnauthenticatedError):
            access.authenticate("Bearer x")
