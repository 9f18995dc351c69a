"""The transaction log table. Append-only: every write is a Put with attribute_not_exists.

Items (pk / sk):
    USER#<id> / SEQ#<seq, 12 digits>     an entry of the user's chain (+ `day`, for DayIndex):
                                         `StoredEntry` (read as stored: `ChainItem`)
    USER#<id> / OUTCOME#<outcome id>     the append record (`Marker`): the outcome is in the
                                         chain at `seq` with `hash` (deduplication, and
                                         verification)
    DAYSHARDS#<day> / SHARDS#<n>         a writer spread entries of that UTC day over n
                                         DayIndex shards (`note_day_shards`)
Indexes (entries only):
    EntryIdIndex  id                     an entry by its id
    DayIndex      day / occurred_at      everyone's entries of one UTC day, in time order,
                                         in `log_day_shards` partitions (`day_partition`)
"""

from __future__ import annotations

import contextlib
import hashlib
import heapq
import itertools
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Self

from cashew import aws, clock, dynamo
from cashew.config import get_settings
from cashew.ledger.models import Entry

SEQ_WIDTH = 12
_DAY_SHARDS = "DAYSHARDS#"
_STORAGE_ONLY = ("pk", "sk", "day")


def _table() -> str:
    return get_settings().log_table


def _pk(user_id: str) -> str:
    return f"USER#{user_id}"


def _sk(seq: int) -> str:
    return f"SEQ#{seq:0{SEQ_WIDTH}d}"


def day_partition(day: str, shard: int) -> str:
    """The DayIndex partition of one shard of a UTC day. Shard 0 is the bare day, as every
    entry was written before days were sharded (and is with one shard): raising the number
    of shards leaves every stored entry where readers look."""
    return day if shard == 0 else f"{day}#{shard}"


_NOTED: set[tuple[str, int]] = set()  # (day, shards) this process has noted


def note_day_shards(day: str, shards: int) -> None:
    """Record, before the first entry of `day` is written over `shards` shards, that they
    were used: readers read every shard any writer used that day, whatever their own
    setting says (a deployment that updates the readers after the writers, or a setting
    lowered by mistake, then hides nothing). Once per day and count per process; a note
    another writer made first is as good."""
    if shards == 1 or (day, shards) in _NOTED:
        return  # shard 0 is read always
    item = {"pk": f"{_DAY_SHARDS}{day}", "sk": f"SHARDS#{shards:02d}", "shards": shards}
    with contextlib.suppress(dynamo.ConditionFailed):
        dynamo.put_item(_table(), item, condition="attribute_not_exists(pk)")
    _NOTED.add((day, shards))


def day_shards(day: str, configured: int) -> int:
    """How many shards of `day` to read: the most any writer noted, and `configured`."""
    items, _ = dynamo.query(
        _table(), "pk = :pk", {":pk": f"{_DAY_SHARDS}{day}"}, consistent=True, limit=64
    )
    return max([configured, *(int(item.get("shards", 1)) for item in items)])


def _shard(entry_id: str, shards: int) -> int:
    """An entry's shard, from its id: entries of one user (a busy merchant) spread evenly."""
    digest = hashlib.sha256(entry_id.encode()).digest()
    return int.from_bytes(digest[:4], "big") % shards


# ---------------------------------------------------------------------------- records


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """An entry item: the entry, keyed by its user and seq, and `day` for the DayIndex (the
    UTC day and the entry's shard of it, `day_partition`)."""

    entry: Entry

    def to_item(self, day_shards: int = 1) -> dict[str, Any]:
        e = self.entry
        return {
            "pk": _pk(e.user_id),
            "sk": _sk(e.seq),
            "day": day_partition(e.occurred_at[:10], _shard(e.id, day_shards)),
            "id": e.id,
            "outcome_id": e.outcome_id,
            "payment_id": e.payment_id,
            "user_id": e.user_id,
            "type": e.type,
            "direction": e.direction,
            "funds": e.funds,
            "amount": e.amount,
            "currency": e.currency,
            "status": e.status,
            "failure_code": e.failure_code,
            "occurred_at": e.occurred_at,
            "seq": e.seq,
            "prev_hash": e.prev_hash,
            "hash": e.hash,
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        """The entry an item holds (validated as the model validates: a missing or wrong
        field is a ValidationError). pk, sk and day are derived from the entry."""
        return cls(
            Entry.model_validate({
                "id": item.get("id"),
                "outcome_id": item.get("outcome_id"),
                "payment_id": item.get("payment_id"),
                "user_id": item.get("user_id"),
                "type": item.get("type"),
                "direction": item.get("direction"),
                "funds": item.get("funds"),
                "amount": item.get("amount"),
                "currency": item.get("currency"),
                "status": item.get("status"),
                "failure_code": item.get("failure_code"),
                "occurred_at": item.get("occurred_at"),
                "seq": item.get("seq"),
                "prev_hash": item.get("prev_hash"),
                "hash": item.get("hash"),
            })
        )  # fmt: skip

    def key(self) -> dict[str, str]:
        """Where the entry sits in the table and its indexes: what a list cursor holds."""
        e = self.entry
        return {"pk": _pk(e.user_id), "sk": _sk(e.seq), "day": e.occurred_at[:10],
                "occurred_at": e.occurred_at}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Marker:
    """The append record, written in the same transaction as the entry: the outcome was
    appended to the user's chain at `seq` with `hash`. `seq` and `hash` are what is stored,
    whatever it is (verification must see an edited record as it is): an int and a str as
    the log writes them."""

    user_id: str
    outcome_id: str
    seq: object
    hash: object

    def to_item(self) -> dict[str, Any]:
        return {
            "pk": _pk(self.user_id),
            "sk": f"OUTCOME#{self.outcome_id}",
            "seq": self.seq,
            "hash": self.hash,
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        return cls(
            str(item.get("pk", "")).removeprefix("USER#"),
            str(item.get("sk", "")).removeprefix("OUTCOME#"),
            item.get("seq"),
            item.get("hash"),
        )


@dataclass(frozen=True, slots=True)
class ChainItem:
    """An entry item of a chain exactly as stored, for verification, which trusts nothing it
    reads: `position` is its place in the table (its sk), `fields` every stored attribute
    but pk, sk and day (what the hash covers, and the hash), or, for an item that could not
    be read as anything the log writes (say, a number edited to 10.5), nothing and why
    (`unreadable`). Not a record of its own but a view of an entry item: an edited item may
    not be an `Entry` at all, so its fields stay the JSON they are."""

    position: int
    fields: Mapping[str, object]  # as stored: an edited item need not be an Entry
    unreadable: str | None = None

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        position = int(str(item["sk"]).removeprefix("SEQ#"))
        return cls(position, {k: v for k, v in item.items() if k not in _STORAGE_ONLY})

    def entry(self) -> Entry | None:
        """The entry it holds; None for one too damaged to read (verification reports it)."""
        if self.unreadable is not None:
            return None
        try:
            return StoredEntry.from_item(self.fields).entry
        except ValueError:
            return None


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
    return StoredEntry.from_item(items[0]).entry if items else None


class AlreadyAppended(Exception):
    """The outcome is already in the user's chain."""


class ChainMoved(Exception):
    """Another writer appended at this seq first; re-read the head and retry."""


def append(new: Entry, *, also: dynamo.Write | None = None) -> None:
    """The entry and its append record in one transaction, both conditional on being new:
    a chain can never fork and an outcome is never appended twice. `also` (the summary's
    count of the outcome) is written in the same transaction, so exactly when the entry is."""
    table = _table()
    marker = Marker(new.user_id, new.outcome_id, new.seq, new.hash).to_item()
    shards = get_settings().log_day_shards
    note_day_shards(new.occurred_at[:10], shards)
    item = StoredEntry(new).to_item(shards)
    new_only = "attribute_not_exists(pk)"
    try:
        transaction = (
            dynamo.Transaction()
            .add("marker", dynamo.put(table, marker, condition=new_only))
            .add("entry", dynamo.put(table, item, condition=new_only))
        )
        if also is not None:
            transaction.add("totals", also)
        transaction.write()
    except dynamo.TransactionCanceled as exc:
        if exc.failed("marker"):
            raise AlreadyAppended(new.outcome_id) from exc
        if exc.failed("entry") or exc.conflict:
            raise ChainMoved(new.user_id) from exc
        raise


_ENTRY_ID = re.compile(r"txn_[0-9A-Z]{26}")


def get_entry(entry_id: str) -> Entry | None:
    if not _ENTRY_ID.fullmatch(entry_id):
        return None
    items, _ = dynamo.query(_table(), "id = :id", {":id": entry_id}, index="EntryIdIndex", limit=1)
    return StoredEntry.from_item(items[0]).entry if items else None


def entry_for_outcome(user_id: str, outcome_id: str) -> Entry | None:
    """The user's entry of one outcome (strongly consistent): its append record says at which
    seq it sits; None if the outcome is not in the user's chain (yet)."""
    marker = dynamo.get_item(_table(), {"pk": _pk(user_id), "sk": f"OUTCOME#{outcome_id}"})
    seq = marker.get("seq") if marker else None
    if not isinstance(seq, int):
        return None
    item = dynamo.get_item(_table(), {"pk": _pk(user_id), "sk": _sk(seq)})
    entry = StoredEntry.from_item(item).entry if item else None
    return entry if entry is not None and entry.outcome_id == outcome_id else None


# ---------------------------------------------------------------------------- reading


Wanted = Callable[[], int]
"""How many more items the reader wants: the Limit of the next request."""


def _pages(
    request: dict[str, Any], start: Mapping[str, Any] | None, wanted: Wanted | None = None
) -> Iterator[dict[str, Any]]:
    """Every item (as DynamoDB returns it) a Query (a Scan, without a key condition)
    returns, page after page, from after `start`; each request asks for what `wanted` says
    (without it, DynamoDB's 1 MB)."""
    client = aws.dynamodb()
    operation = client.query if "KeyConditionExpression" in request else client.scan
    if start:
        request = {**request, "ExclusiveStartKey": dynamo.serialize(start)}
    while True:
        if wanted is not None:
            request["Limit"] = max(1, wanted())
        response = operation(**request)
        yield from response.get("Items", [])
        last = response.get("LastEvaluatedKey")
        if not last:
            return
        request = {**request, "ExclusiveStartKey": last}


def _entries(raws: Iterator[dict[str, Any]]) -> Iterator[StoredEntry]:
    return (StoredEntry.from_item(dynamo.deserialize(raw)) for raw in raws)


def _readable(raw: Mapping[str, Any]) -> tuple[dict[str, Any], str | None]:
    """The item, or, if it cannot be read as anything the log writes (say, a number edited
    to 10.5), its key and why: verification reports it rather than failing on it."""
    try:
        return dynamo.deserialize(raw), None
    except dynamo.UNDESERIALIZABLE as error:
        key = {name: raw.get(name, {}).get("S") for name in ("pk", "sk")}
        return key, f"{type(error).__name__}: {error}"


def chain_items(user_id: str) -> tuple[list[ChainItem], list[Marker]]:
    """Every item of the user's chain as stored (strongly consistent): the entries in
    position order, and the append records."""
    request = {
        "TableName": _table(),
        "KeyConditionExpression": "pk = :pk",
        "ExpressionAttributeValues": dynamo.serialize({":pk": _pk(user_id)}),
        "ConsistentRead": True,
    }
    entries: list[ChainItem] = []
    markers: list[Marker] = []
    for raw in _pages(request, None):
        _sort(*_readable(raw), entries, markers)
    return entries, markers


def _sort(
    item: Mapping[str, Any],
    unreadable: str | None,
    entries: list[ChainItem],
    markers: list[Marker],
) -> None:
    sk = str(item.get("sk", ""))
    if sk.startswith("SEQ#") and sk[4:].isascii() and sk[4:].isdigit():
        if unreadable is None:
            entries.append(ChainItem.from_item(item))
        else:
            entries.append(ChainItem(int(sk[4:]), {}, unreadable))
    elif sk.startswith("OUTCOME#"):
        markers.append(Marker.from_item(item))


def all_chains() -> Iterator[tuple[str, list[ChainItem], list[Marker]]]:
    """Every user's chain, for the audit: one Scan of the whole table, grouped by user."""
    chains: dict[str, tuple[list[ChainItem], list[Marker]]] = {}
    for raw in _pages({"TableName": _table(), "ConsistentRead": True}, None):
        item, unreadable = _readable(raw)
        pk = str(item.get("pk", ""))
        if pk.startswith(_DAY_SHARDS):  # the DayIndex's notes belong to no chain
            continue
        entries, markers = chains.setdefault(pk.removeprefix("USER#"), ([], []))
        _sort(item, unreadable, entries, markers)
    for user_id, (entries, markers) in chains.items():
        entries.sort(key=lambda found: found.position)
        yield user_id, entries, markers


def owners_page(
    segment: int, segments: int, start: str | None, limit: int
) -> tuple[list[str], str | None]:
    """The users whose chains hold items on one page of a segment of a consistent Scan of
    the log (keys only), for the audit's sweep; and where the next page starts."""
    items, next_start = dynamo.scan_page(
        _table(), segment, segments, start, limit, ProjectionExpression="pk",
        FilterExpression="begins_with(pk, :user)",
        ExpressionAttributeValues=dynamo.serialize({":user": "USER#"}),
    )  # fmt: skip
    owners = dict.fromkeys(dynamo.string(raw, "pk").removeprefix("USER#") for raw in items)
    return list(owners), next_start


USER_CURSOR = {"pk": re.compile(r"USER#usr_[0-9A-Z]{26}"), "sk": re.compile(r"SEQ#\d{12}")}
DAY_CURSOR = {
    **USER_CURSOR,
    "day": re.compile(r"\d{4}-\d\d-\d\d"),
    "occurred_at": clock.RFC3339,
}


def user_entries(
    user_id: str, start: Mapping[str, str] | None, wanted: Wanted
) -> Iterator[StoredEntry]:
    """The user's entries, newest first, from after `start`."""
    request = {
        "TableName": _table(),
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :seq)",
        "ExpressionAttributeValues": dynamo.serialize({":pk": _pk(user_id), ":seq": "SEQ#"}),
        "ScanIndexForward": False,
    }
    return _entries(_pages(request, start, wanted))


def day_entries(
    days: list[str],
    since: str,
    until: str,
    start: Mapping[str, str] | None,
    wanted: Wanted,
    *,
    shards: int = 1,
) -> Iterator[StoredEntry]:
    """Everyone's entries with since <= occurred_at <= until, newest first; `days` are
    the UTC days of that range, newest first. Each day's `shards` partitions are read at
    once and merged: newest first, ties in occurred_at by pk then sk, descending, so that an
    entry's place is total and a cursor (`start`, the last entry given) resumes right after
    it, whichever shard it came from."""
    after = _order(start) if start is not None else None
    if start is not None:
        days = [day for day in days if day <= str(start["day"])]
    # each shard holds about 1/shards of what the page wants; a shard that runs short is
    # asked again (its next page), so the page is never short for it
    each = wanted if shards == 1 else (lambda: -(-wanted() // shards) + 1)  # at least 1 shard
    for day in days:
        upper = start["occurred_at"] if start is not None and start["day"] == day else until
        read = day_shards(day, shards)
        merged = heapq.merge(
            *(_shard_entries(day_partition(day, k), since, upper, each) for k in range(read)),
            key=_stored_order,
            reverse=True,
        )
        for stored in merged:
            if after is None or _stored_order(stored) < after:
                yield stored


def _order(key: Mapping[str, Any]) -> tuple[str, str, str]:
    return (str(key["occurred_at"]), str(key["pk"]), str(key["sk"]))


def _stored_order(stored: StoredEntry) -> tuple[str, str, str]:
    return _order(stored.key())


def _shard_entries(partition: str, since: str, until: str, wanted: Wanted) -> Iterator[StoredEntry]:
    """One DayIndex partition, newest first, entries of one occurred_at in `_order` (the
    index keeps no order among them)."""
    request = {
        "TableName": _table(),
        "IndexName": "DayIndex",
        "KeyConditionExpression": "#day = :day AND occurred_at BETWEEN :since AND :until",
        "ExpressionAttributeNames": {"#day": "day"},
        "ExpressionAttributeValues": dynamo.serialize(
            {":day": partition, ":since": since, ":until": until}
        ),
        "ScanIndexForward": False,
    }
    for _, same in itertools.groupby(_entries(_pages(request, None, wanted)), _occurred):
        yield from sorted(same, key=_stored_order, reverse=True)


def _occurred(stored: StoredEntry) -> str:
    return stored.entry.occurred_at
