"""The transaction log table. Append-only: every write is a Put with attribute_not_exists.

Items (pk / sk):
    USER#<id> / SEQ#<seq, 12 digits>     an entry of the user's chain (+ `day`, for DayIndex)
    USER#<id> / OUTCOME#<outcome id>     the append record: the outcome is in the chain at
                                         `seq` with `hash` (deduplication, and verification)
Indexes (entries only):
    EntryIdIndex  id                     an entry by its id
    DayIndex      day / occurred_at      everyone's entries of one UTC day, in time order
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from cashew import aws, clock, dynamo
from cashew.config import get_settings
from cashew.ledger.chain import UNREADABLE, Marker
from cashew.ledger.models import Entry

SEQ_WIDTH = 12
_STORAGE_ONLY = ("pk", "sk", "day")


def _table() -> str:
    return get_settings().log_table


def _pk(user_id: str) -> str:
    return f"USER#{user_id}"


def _sk(seq: int) -> str:
    return f"SEQ#{seq:0{SEQ_WIDTH}d}"


def head(user_id: str) -> Entry | None:
    """The newest entry of the user's chain (strongly consistent)."""
    items, _ = dynamo.query(
        _table(),
        "pk = :pk AND begins_with(sk, :seq)",
        {":pk": _pk(user_id), ":seq": "SEQ#"},
        limit=1,
        newest_first=True,
        consistent=True,
    )
    return entry(items[0]) if items else None


class AlreadyAppended(Exception):
    """The outcome is already in the user's chain."""


class ChainMoved(Exception):
    """Another writer appended at this seq first; re-read the head and retry."""


def append(new: Entry) -> None:
    """The entry and its append record in one transaction, both conditional on being new:
    a chain can never fork and an outcome is never appended twice."""
    table = _table()
    marker = {
        "pk": _pk(new.user_id),
        "sk": f"OUTCOME#{new.outcome_id}",
        "seq": new.seq,
        "hash": new.hash,
    }
    item = {
        "pk": _pk(new.user_id),
        "sk": _sk(new.seq),
        "day": new.occurred_at[:10],
        **new.model_dump(mode="json"),
    }
    new_only = "attribute_not_exists(pk)"
    try:
        dynamo.Transaction().add("marker", dynamo.put(table, marker, condition=new_only)).add(
            "entry", dynamo.put(table, item, condition=new_only)
        ).write()
    except dynamo.TransactionCanceled as exc:
        if exc.failed("marker"):
            raise AlreadyAppended(new.outcome_id) from exc
        if exc.failed("entry") or exc.conflict:
            raise ChainMoved(new.user_id) from exc
        raise


def fields(item: Mapping[str, Any]) -> dict[str, Any]:
    """An entry item's entry fields: what its hash covers, and its own hash."""
    return {k: v for k, v in item.items() if k not in _STORAGE_ONLY}


def entry(item: Mapping[str, Any]) -> Entry:
    return Entry.model_validate(fields(item))


_ENTRY_ID = re.compile(r"txn_[0-9A-Z]{26}")


def get_entry(entry_id: str) -> Entry | None:
    if not _ENTRY_ID.fullmatch(entry_id):
        return None
    items, _ = dynamo.query(_table(), "id = :id", {":id": entry_id}, index="EntryIdIndex", limit=1)
    return entry(items[0]) if items else None


# ---------------------------------------------------------------------------- reading


Wanted = Callable[[], int]
"""How many more items the reader wants: the Limit of the next request."""


def _pages(
    request: dict[str, Any], start: Mapping[str, Any] | None, wanted: Wanted | None = None
) -> Iterator[dict[str, Any]]:
    """Every item a Query (a Scan, without a key condition) returns, page after page, from
    after `start`; each request asks for what `wanted` says (without it, DynamoDB's 1 MB)."""
    client = aws.dynamodb()
    operation = client.query if "KeyConditionExpression" in request else client.scan
    if start:
        request = {**request, "ExclusiveStartKey": dynamo.serialize(start)}
    while True:
        if wanted is not None:
            request["Limit"] = max(1, wanted())
        response = operation(**request)
        for item in response.get("Items", []):
            yield _readable(item)
        last = response.get("LastEvaluatedKey")
        if not last:
            return
        request = {**request, "ExclusiveStartKey": last}


def _readable(raw: Mapping[str, Any]) -> dict[str, Any]:
    """The item, or, if it cannot be read as anything the log writes (say, a number edited
    to 10.5), its key and why: verification reports it rather than failing on it."""
    try:
        return dynamo.deserialize(raw)
    except (ValueError, TypeError, ArithmeticError) as error:
        key = {name: raw.get(name, {}).get("S") for name in ("pk", "sk")}
        return {**key, UNREADABLE: f"{type(error).__name__}: {error}"}


def chain_items(user_id: str) -> tuple[list[tuple[int, dict[str, Any]]], list[Marker]]:
    """Every item of the user's chain as stored (strongly consistent): the entries as
    (position, fields) in position order, and the append records."""
    request = {
        "TableName": _table(),
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": dynamo.serialize({":pk": _pk(user_id)}),
        "ConsistentRead": True,
    }
    entries: list[tuple[int, dict[str, Any]]] = []
    markers: list[Marker] = []
    for item in _pages(request, None):
        _sort(item, entries, markers)
    return entries, markers


def _sort(
    item: Mapping[str, Any],
    entries: list[tuple[int, dict[str, Any]]],
    markers: list[Marker],
) -> None:
    sk = str(item.get("sk", ""))
    if sk.startswith("SEQ#") and sk[4:].isascii() and sk[4:].isdigit():
        entries.append((int(sk[4:]), fields(item)))
    elif sk.startswith("OUTCOME#"):
        markers.append(Marker(sk.removeprefix("OUTCOME#"), item.get("seq"), item.get("hash")))


def all_chains() -> Iterator[tuple[str, list[tuple[int, dict[str, Any]]], list[Marker]]]:
    """Every user's chain, for the audit: one Scan of the whole table, grouped by user."""
    chains: dict[str, tuple[list[tuple[int, dict[str, Any]]], list[Marker]]] = {}
    for item in _pages({"TableName": _table(), "ConsistentRead": True}, None):
        pk = str(item.get("pk", ""))
        entries, markers = chains.setdefault(pk.removeprefix("USER#"), ([], []))
        _sort(item, entries, markers)
    for user_id, (entries, markers) in chains.items():
        entries.sort(key=lambda pair: pair[0])
        yield user_id, entries, markers


USER_CURSOR = {"pk": re.compile(r"USER#usr_[0-9A-Z]{26}"), "sk": re.compile(r"SEQ#\d{12}")}
DAY_CURSOR = {
    **USER_CURSOR,
    "day": re.compile(r"\d{4}-\d\d-\d\d"),
    "occurred_at": clock.RFC3339,
}


def user_entries(
    user_id: str, start: Mapping[str, Any] | None, wanted: Wanted
) -> Iterator[dict[str, Any]]:
    """The user's entry items, newest first, from after `start`."""
    request = {
        "TableName": _table(),
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :seq)",
        "ExpressionAttributeValues": dynamo.serialize({":pk": _pk(user_id), ":seq": "SEQ#"}),
        "ScanIndexForward": False,
    }
    return _pages(request, start, wanted)


def day_entries(
    days: list[str], since: str, until: str, start: Mapping[str, Any] | None, wanted: Wanted
) -> Iterator[dict[str, Any]]:
    """Everyone's entry items with since <= occurred_at <= until, newest first; `days` are
    the UTC days of that range, newest first. A `start` resumes in its own day."""
    if start is not None:
        days = [day for day in days if day <= str(start["day"])]
    for day in days:
        request = {
            "TableName": _table(),
            "IndexName": "DayIndex",
            "KeyConditionExpression": "#day = :day AND occurred_at BETWEEN :since AND :until",
            "ExpressionAttributeNames": {"#day": "day"},
            "ExpressionAttributeValues": dynamo.serialize(
                {":day": day, ":since": since, ":until": until}
            ),
            "ScanIndexForward": False,
        }
        yield from _pages(request, start if start and start["day"] == day else None, wanted)
