"""DynamoDB request units of the calls made inside a window, from item sizes.

The embedded endpoint (moto) answers `ReturnConsumedCapacity` with fixed figures, so the
units are computed here by DynamoDB's published on-demand rules, from the items themselves:

- size of an item: the sum, over its attributes, of the name's UTF-8 length and the value's
  size (S: UTF-8 length; N: 1 byte per two significant digits + 1; B: its length; BOOL and
  NULL: 1; L and M: 3 bytes + 1 per element + the elements; sets: the elements);
- a write (PutItem, UpdateItem, DeleteItem, BatchWriteItem's requests): 1 write unit per KB
  of the larger of the item before and after it; twice that inside TransactWriteItems,
  whose ConditionCheck items are billed as writes of the item checked;
- each global secondary index the write touches: 1 write unit per KB of the index entry
  (its projected attributes, its keys and the table's, plus 100 bytes), for a new or a
  removed entry, an updated one (a projected attribute changed), and two (a delete and a
  put) when the index key changed; index writes are not doubled by a transaction;
- a read: 1 read unit per 4 KB (GetItem per item; Query and Scan over the sum of the items
  they evaluated, before any filter or projection, so the meter runs the same page again
  without them); half as much for an eventually consistent read, twice for TransactGetItems.

Before and after images are read with a client of its own (not hooked, not counted), around
each write the layer makes: only calls that succeed are metered (a cancelled transaction is
billed by DynamoDB too: the figures are of the paths that succeed, as the cost model needs).
"""

from __future__ import annotations

import contextlib
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

Item = Mapping[str, Any]  # an item in DynamoDB JSON ({"name": {"S": "..."}})

WRITE_KB = 1024
READ_KB = 4096
INDEX_OVERHEAD = 100
WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
READS = {"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"}


def value_size(value: Mapping[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in inner.items())
    return int(_SCALARS[kind](inner))


def number_size(text: str) -> int:
    digits = Decimal(text).normalize().as_tuple().digits
    return math.ceil(len(digits) / 2) + 1


_SCALARS: dict[str, Any] = {
    "S": lambda s: len(s.encode()),
    "N": number_size,
    "B": len,
    "BOOL": lambda _: 1,
    "NULL": lambda _: 1,
    "SS": lambda ss: sum(len(s.encode()) for s in ss),
    "NS": lambda ns: sum(number_size(n) for n in ns),
    "BS": lambda bs: sum(len(b) for b in bs),
}


def item_size(item: Item | None) -> int:
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[str, ...]
    projection: str  # ALL, KEYS_ONLY or INCLUDE
    include: tuple[str, ...] = ()

    def entry(self, item: Item | None, table_keys: tuple[str, ...]) -> dict[str, Any] | None:
        """The item's entry in this index (None: the item is not in it)."""
        if not item or any(key not in item for key in self.keys):
            return None
        if self.projection == "ALL":
            return dict(item)
        names = {*self.keys, *table_keys, *self.include}
        return {name: value for name, value in item.items() if name in names}


@dataclass(frozen=True)
class Table:
    name: str
    keys: tuple[str, ...]
    indexes: tuple[Index, ...]

    def key_of(self, item: Item) -> dict[str, Any]:
        return {name: item[name] for name in self.keys}


@dataclass
class Units:
    """What a window's calls consumed."""

    read: float = 0.0
    write: float = 0.0
    index_write: float = 0.0
    by_table: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # + indexes

    @property
    def total_write(self) -> float:
        return self.write + self.index_write

    def as_dict(self) -> dict[str, Any]:
        return {
            "read_units": round(self.read, 2),
            "write_units": round(self.write, 2),
            "index_write_units": round(self.index_write, 2),
            "write_units_by_table": {t: round(u, 2) for t, u in sorted(self.by_table.items())},
        }


def write_units(before: Item | None, after: Item | None, transactional: bool) -> float:
    units = max(1, math.ceil(max(item_size(before), item_size(after)) / WRITE_KB))
    return units * (2 if transactional else 1)


def index_units(table: Table, before: Item | None, after: Item | None) -> Counter[str]:
    """Write units per index of a change from `before` to `after`."""
    units: Counter[str] = Counter()
    for index in table.indexes:
        old, new = index.entry(before, table.keys), index.entry(after, table.keys)
        if old == new:
            continue
        sizes = []
        moved = old is not None and new is not None
        if moved and any(old[k] != new[k] for k in index.keys):  # type: ignore[index]
            sizes = [old, new]  # a delete and a put
        else:
            sizes = [new if new is not None else old]
        for entry in sizes:
            units[index.name] += max(1, math.ceil((item_size(entry) + INDEX_OVERHEAD) / WRITE_KB))
    return units


def read_units(total_size: int, consistent: bool, transactional: bool = False) -> float:
    units = max(1, math.ceil(total_size / READ_KB))
    if transactional:
        return units * 2.0
    return units * (1.0 if consistent else 0.5)


def describe_tables(client: Any) -> dict[str, Table]:
    tables = {}
    for name in client.list_tables()["TableNames"]:
        shape = client.describe_table(TableName=name)["Table"]
        keys = tuple(k["AttributeName"] for k in shape["KeySchema"])
        indexes = tuple(
            Index(
                index["IndexName"],
                tuple(k["AttributeName"] for k in index["KeySchema"]),
                index["Projection"]["ProjectionType"],
                tuple(index["Projection"].get("NonKeyAttributes", ())),
            )
            for index in shape.get("GlobalSecondaryIndexes", ())
        )
        tables[name] = Table(name, keys, indexes)
    return tables


@dataclass
class _Pending:
    operation: str
    params: dict[str, Any]
    before: list[tuple[str, dict[str, Any], Item | None]]  # (table, key, item before)


class CapacityMeter:
    """Hooks a boto3 session's DynamoDB calls; `window()` yields the units they consumed."""

    def __init__(self, reader: Any) -> None:
        self._reader = reader  # a DynamoDB client of its own, on the same endpoint
        self._tables = describe_tables(reader)
        self._events: Any = None
        self._window: Units | None = None
        self._pending: dict[int, _Pending] = {}

    def install(self, client: Any) -> None:
        """Hook `client` (a client copies its session's hooks when it is created)."""
        self._events = client.meta.events
        self._events.register("before-parameter-build.dynamodb", self._before)
        self._events.register("after-call.dynamodb", self._after)

    def uninstall(self) -> None:
        if self._events is not None:
            self._events.unregister("before-parameter-build.dynamodb", self._before)
            self._events.unregister("after-call.dynamodb", self._after)
            self._events = None

    @contextlib.contextmanager
    def window(self) -> Iterator[Units]:
        units = Units()
        self._pending.clear()
        self._window = units
        try:
            yield units
        finally:
            self._window = None
            self._pending.clear()

    # -- hooks
    def _before(self, params: dict[str, Any], model: Any, context: Any = None, **_: Any) -> None:
        if self._window is None or model.name not in WRITES | READS:
            return
        before = [(t, k, self._get(t, k)) for t, k in self._written_keys(model.name, params)]
        self._pending[id(context)] = _Pending(model.name, dict(params), before)

    def _after(self, parsed: dict[str, Any], model: Any, context: Any = None, **_: Any) -> None:
        pending = self._pending.pop(id(context), None)
        if self._window is None or pending is None:
            return
        status = parsed.get("ResponseMetadata", {}).get("HTTPStatusCode", 200)
        if "Error" in parsed or status >= 300:
            return
        if pending.operation in WRITES:
            self._meter_writes(pending)
        else:
            self._meter_reads(pending, parsed)

    # -- writes
    def _written_keys(self, operation: str, params: dict[str, Any]) -> list[tuple[str, Any]]:
        if operation in ("PutItem",):
            table = self._tables[params["TableName"]]
            return [(table.name, table.key_of(params["Item"]))]
        if operation in ("UpdateItem", "DeleteItem"):
            return [(params["TableName"], params["Key"])]
        if operation == "BatchWriteItem":
            keys = []
            for name, requests in params["RequestItems"].items():
                for request in requests:
                    if "PutRequest" in request:
                        keys.append(
                            (name, self._tables[name].key_of(request["PutRequest"]["Item"]))
                        )
                    else:
                        keys.append((name, request["DeleteRequest"]["Key"]))
            return keys
        if operation == "TransactWriteItems":
            keys = []
            for entry in params["TransactItems"]:
                ((_, body),) = entry.items()
                table = self._tables[body["TableName"]]
                keys.append(
                    (table.name, body["Key"] if "Key" in body else table.key_of(body["Item"]))
                )
            return keys
        return []

    def _meter_writes(self, pending: _Pending) -> None:
        window = self._window
        if window is None:
            return
        transactional = pending.operation == "TransactWriteItems"
        kinds = [next(iter(e)) for e in pending.params["TransactItems"]] if transactional else None
        for position, (name, key, before) in enumerate(pending.before):
            table = self._tables[name]
            if kinds is not None and kinds[position] == "ConditionCheck":
                units, after = write_units(before, None, True), before
            else:
                after = self._get(name, key)
                units = write_units(before, after, transactional)
            indexes = index_units(table, before, after)
            window.write += units
            window.index_write += sum(indexes.values())
            window.by_table[name] += units + sum(indexes.values())

    # -- reads
    def _meter_reads(self, pending: _Pending, parsed: dict[str, Any]) -> None:
        window = self._window
        if window is None:
            return
        params, operation = pending.params, pending.operation
        if operation == "GetItem":
            size = item_size(parsed.get("Item"))
            window.read += read_units(size, bool(params.get("ConsistentRead")))
        elif operation == "TransactGetItems":
            for response in parsed.get("Responses", ()):
                window.read += read_units(item_size(response.get("Item")), True, True)
        elif operation == "BatchGetItem":
            for name, items in parsed.get("Responses", {}).items():
                consistent = bool(params["RequestItems"][name].get("ConsistentRead"))
                for item in items:
                    window.read += read_units(item_size(item), consistent)
        else:  # Query, Scan: the items evaluated, whole (before filters and projections)
            evaluated = self._evaluated(operation, params)
            total = sum(item_size(item) for item in evaluated)
            window.read += read_units(total, bool(params.get("ConsistentRead")))

    def _evaluated(self, operation: str, params: dict[str, Any]) -> list[Item]:
        again = {
            name: value
            for name, value in params.items()
            if name
            not in (
                "FilterExpression",
                "ProjectionExpression",
                "Select",
                "ReturnConsumedCapacity",
            )
        }
        if "ProjectionExpression" in params or "FilterExpression" in params:
            again = _only_used(again)  # placeholders of the dropped expressions are refused
        call = self._reader.query if operation == "Query" else self._reader.scan
        items: list[Item] = call(**again).get("Items", [])
        return items

    def _get(self, table: str, key: Mapping[str, Any]) -> Item | None:
        item: Item | None = self._reader.get_item(
            TableName=table, Key=dict(key), ConsistentRead=True
        ).get("Item")
        return item


def _only_used(params: dict[str, Any]) -> dict[str, Any]:
    """Keep the expression placeholders the key condition uses (DynamoDB refuses unused
    ones)."""
    used = set(re.findall(r"[#:][A-Za-z0-9_]+", params.get("KeyConditionExpression", "")))
    kept = {k: v for k, v in params.items() if not k.startswith("ExpressionAttribute")}
    for name in ("ExpressionAttributeNames", "ExpressionAttributeValues"):
        chosen = {k: v for k, v in params.get(name, {}).items() if k in used}
        if chosen:
            kept[name] = chosen
    return kept
