"""dynamo.transact_get: a snapshot of a few items (a hot payee's balance before a refusal)."""

from __future__ import annotations

from typing import Any

import pytest

from cashew import aws, dynamo
from cashew.errors import ConflictError


class _Canceled(Exception):
    """What botocore raises when a TransactGetItems meets a transaction on its items."""


class _Client:
    """Answers TransactGetItems from `rounds`: each the items in key order, or None to
    cancel that round (a TransactionConflict)."""

    class exceptions:
        TransactionCanceledException = _Canceled

    def __init__(self, rounds: list[list[dict[str, Any] | None] | None]) -> None:
        self.rounds = rounds
        self.requests: list[list[dict[str, Any]]] = []

    def transact_get_items(self, TransactItems: list[dict[str, Any]]) -> dict[str, Any]:
        self.requests.append(TransactItems)
        items = self.rounds.pop(0)
        if items is None:
            raise _Canceled
        return {"Responses": [{"Item": item} if item else {} for item in items]}


KEYS = [{"pk": "USER#u", "sk": "BALANCE#USD"}, {"pk": "USER#u", "sk": "BALANCE#USD#03"}]


def test_the_items_come_back_in_key_order_projected_and_none_when_absent(monkeypatch):
    shard = {"pk": {"S": "USER#u"}, "sk": {"S": "BALANCE#USD#03"}, "available": {"N": "7"}}
    client = _Client([[None, shard]])
    monkeypatch.setattr(aws, "dynamodb", lambda: client)
    assert dynamo.transact_get("t", KEYS, ("pk", "sk", "available")) == [
        None,
        {"pk": "USER#u", "sk": "BALANCE#USD#03", "available": 7},
    ]
    ((main, second),) = client.requests
    assert main["Get"]["Key"] == dynamo.serialize(KEYS[0]) and main["Get"]["TableName"] == "t"
    assert main["Get"]["ProjectionExpression"] == "#a0, #a1, #a2"
    assert second["Get"]["ExpressionAttributeNames"] == {
        "#a0": "pk",
        "#a1": "sk",
        "#a2": "available",
    }


def test_contention_is_retried_and_then_a_409(monkeypatch):
    monkeypatch.setattr(dynamo.time, "sleep", lambda _: None)
    client = _Client([None, [None, None]])
    monkeypatch.setattr(aws, "dynamodb", lambda: client)
    assert dynamo.transact_get("t", KEYS, ("available",)) == [None, None]
    assert len(client.requests) == 2
    busy = _Client([None] * dynamo.TRANSACTION_ATTEMPTS)
    monkeypatch.setattr(aws, "dynamodb", lambda: busy)
    with pytest.raises(ConflictError, match="busy"):
        dynamo.transact_get("t", KEYS, ("available",))
    assert len(busy.requests) == dynamo.TRANSACTION_ATTEMPTS
