"""DynamoDB plumbing shared by the store modules: (de)serialisation and transactions.

Store modules build the expressions; this module only runs them and classifies failures.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from cashew import aws

Item = dict[str, Any]


@functools.cache
def _codecs() -> tuple[Any, Any]:
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer  # noqa: PLC0415

    class IntDeserializer(TypeDeserializer):  # type: ignore[misc]
        """Numbers come back as int (every number we store is an integer: money, seq,
        epoch) and binary as bytes."""

        def _deserialize_n(self, value: str) -> int:
            return int(value)

        def _deserialize_b(self, value: bytes) -> bytes:
            return value

    return TypeSerializer(), IntDeserializer()


def serialize(item: Mapping[str, Any]) -> dict[str, Any]:
    serializer, _ = _codecs()
    return {k: serializer.serialize(v) for k, v in item.items()}


def deserialize(item: Mapping[str, Any]) -> Item:
    _, deserializer = _codecs()
    return {k: deserializer.deserialize(v) for k, v in item.items()}


class ConditionFailed(Exception):
    """A conditional PutItem, UpdateItem or DeleteItem found its condition false; nothing was
    written."""


_THROTTLED = ("ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded")


class TransactionCanceled(Exception):
    """A TransactWriteItems was cancelled; `reasons[i]` is the code of item i ('None' if ok)."""

    def __init__(self, reasons: list[str], items: list[Item | None]) -> None:
        super().__init__(", ".join(reasons))
        self.reasons = reasons
        self.items = items

    def failed(self, index: int) -> bool:
        return self.reasons[index] == "ConditionalCheckFailed"

    @property
    def conflict(self) -> bool:
        return "TransactionConflict" in self.reasons

    @property
    def throttled(self) -> bool:
        return any(r in _THROTTLED for r in self.reasons)

    @property
    def retryable(self) -> bool:
        """Only contention or throttling cancelled it: no condition failed."""
        failed = [r for r in self.reasons if r not in ("None", "")]
        return bool(failed) and all(r == "TransactionConflict" or r in _THROTTLED for r in failed)


def transact_write(items: Sequence[Mapping[str, Any]]) -> None:
    """Run one all-or-nothing TransactWriteItems; raise TransactionCanceled with reasons."""
    client = aws.dynamodb()
    try:
        client.transact_write_items(TransactItems=list(items))  # type: ignore[arg-type]
    except client.exceptions.TransactionCanceledException as exc:
        raw = exc.response.get("CancellationReasons", [])
        reasons = [r.get("Code", "None") for r in raw]
        olds = [deserialize(r["Item"]) if r.get("Item") else None for r in raw]
        raise TransactionCanceled(reasons, olds) from exc


def get_item(table: str, key: Mapping[str, Any], *, consistent: bool = True) -> Item | None:
    response = aws.dynamodb().get_item(
        TableName=table, Key=serialize(key), ConsistentRead=consistent
    )
    raw = response.get("Item")
    return deserialize(raw) if raw else None


def put_item(table: str, item: Mapping[str, Any], condition: str | None = None) -> None:
    kwargs: dict[str, Any] = {"TableName": table, "Item": serialize(item)}
    if condition:
        kwargs["ConditionExpression"] = condition
    client = aws.dynamodb()
    try:
        client.put_item(**kwargs)
    except client.exceptions.ConditionalCheckFailedException as exc:
        raise ConditionFailed(table) from exc


def update_item(
    table: str,
    key: Mapping[str, Any],
    update: str,
    values: Mapping[str, Any],
    *,
    condition: str | None = None,
    names: Mapping[str, str] | None = None,
    return_new: bool = False,
) -> Item | None:
    """Run one UpdateItem; with `return_new`, return the whole item as it is after the update
    (ReturnValues ALL_NEW), otherwise None."""
    kwargs: dict[str, Any] = {"TableName": table, "Key": serialize(key), "UpdateExpression": update}
    if values:
        kwargs["ExpressionAttributeValues"] = serialize(values)
    if condition:
        kwargs["ConditionExpression"] = condition
    if names:
        kwargs["ExpressionAttributeNames"] = dict(names)
    if return_new:
        kwargs["ReturnValues"] = "ALL_NEW"
    client = aws.dynamodb()
    try:
        response = client.update_item(**kwargs)
    except client.exceptions.ConditionalCheckFailedException as exc:
        raise ConditionFailed(table) from exc
    attributes = response.get("Attributes")
    return deserialize(attributes) if return_new and attributes else None


def delete_item(
    table: str,
    key: Mapping[str, Any],
    condition: str | None = None,
    *,
    values: Mapping[str, Any] | None = None,
    names: Mapping[str, str] | None = None,
) -> None:
    """Run one DeleteItem; raise ConditionFailed (nothing deleted) if `condition` is false."""
    kwargs: dict[str, Any] = {"TableName": table, "Key": serialize(key)}
    if condition:
        kwargs["ConditionExpression"] = condition
    if values:
        kwargs["ExpressionAttributeValues"] = serialize(values)
    if names:
        kwargs["ExpressionAttributeNames"] = dict(names)
    client = aws.dynamodb()
    try:
        client.delete_item(**kwargs)
    except client.exceptions.ConditionalCheckFailedException as exc:
        raise ConditionFailed(table) from exc


def query(
    table: str,
    key_condition: str,
    values: Mapping[str, Any],
    *,
    names: Mapping[str, str] | None = None,
    index: str | None = None,
    limit: int | None = None,
    newest_first: bool = False,
    start_key: Mapping[str, Any] | None = None,
    consistent: bool = False,
) -> tuple[list[Item], Item | None]:
    kwargs: dict[str, Any] = {
        "TableName": table,
        "KeyConditionExpression": key_condition,
        "ExpressionAttributeValues": serialize(values),
        "ScanIndexForward": not newest_first,
        "ConsistentRead": consistent,
    }
    if names:
        kwargs["ExpressionAttributeNames"] = dict(names)
    if index:
        kwargs["IndexName"] = index
    if limit:
        kwargs["Limit"] = limit
    if start_key:
        kwargs["ExclusiveStartKey"] = serialize(start_key)
    response = aws.dynamodb().query(**kwargs)
    last = response.get("LastEvaluatedKey")
    return [deserialize(i) for i in response.get("Items", [])], (
        deserialize(last) if last else None
    )
