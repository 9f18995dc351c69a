"""DynamoDB plumbing shared by the store modules: (de)serialisation and transactions.

Store modules build the expressions; this module only runs them and classifies failures. A
TransactWriteItems is a `Transaction` of named items, and its cancellation is read by name.
"""

from __future__ import annotations

import functools
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NewType

from cashew import aws, cursor
from cashew.errors import ConflictError, RateLimitedError

Item = dict[str, Any]

# One item of a TransactWriteItems, built by the store that owns its table with `put`,
# `update`, `check` or `delete`; other modules hand it to a `Transaction` unread.
Write = NewType("Write", dict[str, Any])


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


def string(raw: Mapping[str, Any], name: str) -> str:
    """The string attribute `name` of an item as DynamoDB gives it (wire format), "" if it
    has none: what can still be said of an item that does not deserialize."""
    value = raw.get(name)
    found = value.get("S") if isinstance(value, Mapping) else None
    return found if isinstance(found, str) else ""


UNDESERIALIZABLE = (ValueError, TypeError, ArithmeticError)
"""What `deserialize` raises for an attribute nothing of ours writes (a number edited to
10.5: every number we store is an integer)."""


class ConditionFailed(Exception):
    """A conditional PutItem, UpdateItem or DeleteItem found its condition false; nothing was
    written."""


_THROTTLED = ("ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded")
TRANSACTION_ATTEMPTS = 4


class TransactionCanceled(Exception):
    """A TransactWriteItems was cancelled; `reasons[i]` is the code of item i ('None' if ok).
    Raised by a `Transaction`, it also knows each item's name: ask `failed("debit")`."""

    def __init__(
        self, reasons: list[str], items: list[Item | None], names: Sequence[str] = ()
    ) -> None:
        super().__init__(", ".join(reasons))
        self.reasons = reasons
        self.items = items
        self.names = tuple(names)

    def failed(self, *names: str) -> bool:
        """Whether the condition of any of the named items was false (nothing was written).
        A name the transaction did not hold is a bug, not a False."""
        return any(self._reason(self._position(n)) == "ConditionalCheckFailed" for n in names)

    def _position(self, name: str) -> int:
        if name not in self.names:
            raise ValueError(f"not in the transaction: {name} (it holds {list(self.names)})")
        return self.names.index(name)

    def _reason(self, index: int) -> str:
        return self.reasons[index] if index < len(self.reasons) else "None"

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
    """Run one all-or-nothing TransactWriteItems; raise TransactionCanceled with reasons.
    Code builds a `Transaction` instead, which names its items."""
    client = aws.dynamodb()
    try:
        client.transact_write_items(TransactItems=list(items))  # type: ignore[arg-type]
    except client.exceptions.TransactionCanceledException as exc:
        raw = exc.response.get("CancellationReasons", [])
        reasons = [r.get("Code", "None") for r in raw]
        olds = [deserialize(r["Item"]) if r.get("Item") else None for r in raw]
        raise TransactionCanceled(reasons, olds) from exc


def _write(
    action: str,
    request: dict[str, Any],
    condition: str | None,
    names: Mapping[str, str] | None,
    values: Mapping[str, Any] | None,
) -> Write:
    """The transaction item `{action: request + the condition's parts}` (a new dict: the
    caller's `request` is left as it was)."""
    expression: dict[str, Any] = {}
    if condition:
        expression["ConditionExpression"] = condition
    if names:
        expression["ExpressionAttributeNames"] = dict(names)
    if values:
        expression["ExpressionAttributeValues"] = serialize(values)
    return Write({action: {**request, **expression}})


def put(
    table: str,
    item: Mapping[str, Any],
    *,
    condition: str | None = None,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> Write:
    """A Put of `item` for a `Transaction`."""
    return _write("Put", {"TableName": table, "Item": serialize(item)}, condition, names, values)


def update(
    table: str,
    key: Mapping[str, Any],
    expression: str,
    *,
    condition: str | None = None,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> Write:
    """An Update of the item at `key` for a `Transaction`."""
    request = {"TableName": table, "Key": serialize(key), "UpdateExpression": expression}
    return _write("Update", request, condition, names, values)


def check(
    table: str,
    key: Mapping[str, Any],
    condition: str,
    *,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> Write:
    """A ConditionCheck of the item at `key`: the transaction fails unless `condition` holds."""
    return _write(
        "ConditionCheck", {"TableName": table, "Key": serialize(key)}, condition, names, values
    )


def delete(
    table: str,
    key: Mapping[str, Any],
    *,
    condition: str | None = None,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> Write:
    """A Delete of the item at `key` for a `Transaction`."""
    return _write("Delete", {"TableName": table, "Key": serialize(key)}, condition, names, values)


class Transaction:
    """One TransactWriteItems built by name, whose cancellation is read by name:

        tx = Transaction().add("debit", debit_item).add("credit", credit_item)
        try:
            tx.write()
        except TransactionCanceled as exc:
            if exc.failed("debit"): ...

    The order of the items is the order they were added in; no outcome depends on it."""

    def __init__(self) -> None:
        self._items: dict[str, Write] = {}

    def add(self, name: str, item: Write) -> Transaction:
        if name in self._items:
            raise ValueError(f"{name} is already in the transaction")
        self._items[name] = item
        return self

    def extend(self, other: Transaction) -> Transaction:
        for name, item in other._items.items():
            self.add(name, item)
        return self

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __len__(self) -> int:
        return len(self._items)

    def write(self) -> None:
        """Run it once, all or nothing; TransactionCanceled names the items that failed."""
        try:
            transact_write(list(self._items.values()))
        except TransactionCanceled as exc:
            exc.names = self.names
            raise

    def write_retrying(self) -> None:
        """`write`, retrying contention and throttling (never condition failures); when they
        persist, 409 or 429 rather than a 5xx. Nothing was written in either case."""
        for attempt in range(TRANSACTION_ATTEMPTS):
            try:
                self.write()
                return
            except TransactionCanceled as exc:
                if not exc.retryable:
                    raise
                if attempt + 1 == TRANSACTION_ATTEMPTS:
                    if exc.throttled:
                        raise RateLimitedError(
                            "too many requests for this account; retry shortly",
                            headers={"Retry-After": "1"},
                        ) from exc
                    raise ConflictError("the account is busy; retry the request") from exc
                time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 # nosec B311 # jitter


@dataclass(frozen=True, slots=True)
class Read[T]:
    """One strongly consistent item read of a BatchGetItem, built by the store that owns its
    table: the key, the attributes it may see (`projection`, names), and how the item (None
    when there is none) becomes a record."""

    table: str
    key: Mapping[str, Any]
    parse: Callable[[Item | None], T]
    projection: tuple[str, ...] = ()


BATCH_GET_ATTEMPTS = 4  # rounds for keys DynamoDB left unprocessed (throttling)


class Unprocessed(Exception):
    """DynamoDB left keys of a BatchGetItem unprocessed round after round."""


def batch_get[A, B](first: Read[A], second: Read[B]) -> tuple[A, B]:
    """Two items of two tables in one BatchGetItem call (one per table, both strongly
    consistent), each parsed by its store; keys left unprocessed are asked again, with
    backoff, and Unprocessed raised when they stay so."""
    reads: tuple[Read[Any], Read[Any]] = (first, second)
    if first.table == second.table:
        raise ValueError("batch_get reads one item of each of two tables")
    request: dict[str, Any] = {}
    for read in reads:
        entry: dict[str, Any] = {"Keys": [serialize(read.key)], "ConsistentRead": True}
        if read.projection:
            names = {f"#a{i}": name for i, name in enumerate(read.projection)}
            entry["ProjectionExpression"] = ", ".join(names)
            entry["ExpressionAttributeNames"] = names
        request[read.table] = entry
    found: dict[str, Item] = {}
    for attempt in range(BATCH_GET_ATTEMPTS):
        response = aws.dynamodb().batch_get_item(RequestItems=request)
        for table, items in (response.get("Responses") or {}).items():
            for raw in items:
                found[table] = deserialize(raw)
        request = response.get("UnprocessedKeys") or {}
        if not request:
            return first.parse(found.get(first.table)), second.parse(found.get(second.table))
        time.sleep(random.uniform(0, 0.02 * 2**attempt))  # noqa: S311 # nosec B311 # jitter
    raise Unprocessed(f"BatchGetItem left {sorted(request)} unprocessed")


def get_item(table: str, key: Mapping[str, Any], *, consistent: bool = True) -> Item | None:
    raw = get_raw_item(table, key, consistent=consistent)
    return deserialize(raw) if raw else None


def get_raw_item(
    table: str, key: Mapping[str, Any], *, consistent: bool = True
) -> dict[str, Any] | None:
    """The item at `key` as DynamoDB gives it (wire format), for a reader that must tell an
    item that does not deserialize from a failure (see `UNDESERIALIZABLE`)."""
    response = aws.dynamodb().get_item(
        TableName=table, Key=serialize(key), ConsistentRead=consistent
    )
    raw: dict[str, Any] | None = response.get("Item") or None
    return raw


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


def scan_page(
    table: str,
    segment: int,
    segments: int,
    start: str | None,
    limit: int,
    **request: Any,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of segment `segment` of `segments` of a consistent Scan of `table` (at most
    `limit` items read), from `start` (the `next_start` of the page before): its items as
    DynamoDB gives them (wire format), and where the next page starts (an opaque key; None
    at the segment's end). `request`: the Scan's other parameters (a projection, a filter).
    For sweeps that go on across invocations from a saved start."""
    scan: dict[str, Any] = {
        "TableName": table, "ConsistentRead": True, "Segment": segment,
        "TotalSegments": segments, "Limit": limit, **request,
    }  # fmt: skip
    if start is not None:
        scan["ExclusiveStartKey"] = serialize(cursor.decode_key(start))
    response = aws.dynamodb().scan(**scan)
    last = response.get("LastEvaluatedKey")
    return list(response.get("Items", [])), cursor.encode(deserialize(last)) if last else None
