"""The summary's running totals: per UTC day, what the log's outcomes add up to, kept by the
log consumer in the very transaction that appends each outcome's first entry, so that a total
counts an outcome exactly once, and only once it is in the log.

Items of the reports table (pk / sk):
    DAY#<day>#<nn> / TOTALS    the totals of the outcomes of that UTC day whose id hashes to
                               shard nn (`SHARDS` of them, each its own partition: at 10,000
                               outcomes/s each takes ~156 transactional updates and ~312
                               write units a second, where one would take all of them;
                               `make capacity`): `outcomes`,
                               and per (currency, type, status) `n|c|t|s` outcomes and
                               `a|c|t|s` their amount; per currency `fn|c` and `fa|c`, the
                               fraud declines
    TOTALS / FROM              `day`: the first UTC day whose every outcome was counted
                               (`first_counted_day`); before it, read the log

Nothing else writes these items, and the consumer only ever adds to them.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cashew import aws, clock, dynamo
from cashew.config import get_settings
from cashew.ledger.models import Entry

SHARDS = 64
_BATCH = 100  # keys per BatchGetItem
ALL_DAYS = "0000-00-00"
"""The `day` of FROM when the log held no entry as counting started: every day is counted."""
_FROM = {"pk": "TOTALS", "sk": "FROM"}
_FRAUD = "fraud_suspected"


def _table() -> str:
    return get_settings().reports_table


def _shard(outcome_id: str) -> int:
    return int.from_bytes(hashlib.sha256(outcome_id.encode()).digest()[:4], "big") % SHARDS


def _day_key(day: str, shard: int) -> dict[str, str]:
    return {"pk": f"DAY#{day}#{shard:02d}", "sk": "TOTALS"}


def count(entry: Entry) -> dynamo.Write:
    """The update that counts `entry`'s outcome in its day's totals: for the append's
    transaction, so it happens if and only if the entry is appended."""
    group = f"{entry.currency}|{entry.type}|{entry.status}"
    names = {"#n": f"n|{group}", "#a": f"a|{group}"}
    adds = ["outcomes :one", "#n :one", "#a :amount"]
    if entry.failure_code == _FRAUD:
        names |= {"#fn": f"fn|{entry.currency}", "#fa": f"fa|{entry.currency}"}
        adds += ["#fn :one", "#fa :amount"]
    key = _day_key(entry.occurred_at[:10], _shard(entry.outcome_id))
    return dynamo.update(
        _table(), key, "ADD " + ", ".join(adds), names=names,
        values={":one": 1, ":amount": entry.amount},
    )  # fmt: skip


_STARTED: set[str] = set()  # the reports tables this process has seen a FROM in


def start() -> None:
    """Before this process counts its first outcome: make sure FROM says from which day the
    totals are whole. The first writer of a deployment decides it: every day if the log
    holds no entry yet (a new stack), else the day after today (the entries appended before
    counting began are of today at the latest). One conditional put; a FROM another writer
    made first stands."""
    if _table() in _STARTED:
        return
    if dynamo.get_item(_table(), _FROM) is None:
        tomorrow = (clock.now() + timedelta(days=1)).date().isoformat()
        day = tomorrow if _log_has_entries() else ALL_DAYS
        with contextlib.suppress(dynamo.ConditionFailed):
            dynamo.put_item(_table(), {**_FROM, "day": day}, condition="attribute_not_exists(pk)")
    _STARTED.add(_table())


def _log_has_entries() -> bool:
    """Whether any item of the log is an entry (in a log that has any, they are nearly all
    its items: the first page of the Scan finds one)."""
    request: dict[str, Any] = {
        "TableName": get_settings().log_table,
        "ProjectionExpression": "sk",
        "Select": "SPECIFIC_ATTRIBUTES",  # its policy's condition names it: absent, IAM denies
        "FilterExpression": "begins_with(sk, :seq)",
        "ExpressionAttributeValues": {":seq": {"S": "SEQ#"}},
        "Limit": 100,
        "ConsistentRead": True,  # a young log's latest entries count too
    }
    while True:
        response = aws.dynamodb().scan(**request)
        if response.get("Items"):
            return True
        if "LastEvaluatedKey" not in response:
            return False
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def first_counted_day() -> str | None:
    """The first UTC day the totals hold whole (`ALL_DAYS` for every day); None before any
    outcome was counted."""
    item = dynamo.get_item(_table(), _FROM)
    return str(item["day"]) if item and "day" in item else None


@dataclass
class Totals:
    """What the outcomes of some days add up to."""

    outcomes: int = 0
    counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    amounts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    fraud: Counter[tuple[str, str]] = field(default_factory=Counter)  # (currency, n | a)

    def add(self, currency: str, type_: str, status: str, amount: int, failure: str | None) -> None:
        self.outcomes += 1
        self.counts[currency, type_, status] += 1
        self.amounts[currency, type_, status] += amount
        if failure == _FRAUD:
            self.fraud[currency, "n"] += 1
            self.fraud[currency, "a"] += amount

    def add_item(self, item: Mapping[str, Any]) -> None:
        self.outcomes += int(item.get("outcomes", 0))
        for name, value in item.items():
            kind, _, rest = name.partition("|")
            if kind in ("n", "a"):
                currency, type_, status = rest.split("|")
                (self.counts if kind == "n" else self.amounts)[currency, type_, status] += int(
                    value
                )
            elif kind in ("fn", "fa"):
                self.fraud[rest, kind[1]] += int(value)


def of_days(days: list[str], into: Totals) -> None:
    """Add the totals of whole `days`: every shard of each, by BatchGetItem (100 keys a
    request, what DynamoDB leaves unprocessed asked again), strongly consistent."""
    keys = [_day_key(day, shard) for day in days for shard in range(SHARDS)]
    if not keys:
        return
    client = aws.dynamodb()
    for start in range(0, len(keys), _BATCH):
        request: dict[str, Any] = {
            _table(): {
                "Keys": [dynamo.serialize(k) for k in keys[start : start + _BATCH]],
                "ConsistentRead": True,
            }
        }
        for attempt in itertools.count():
            response = client.batch_get_item(RequestItems=request)
            for raw in response.get("Responses", {}).get(_table(), []):
                into.add_item(dynamo.deserialize(raw))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(min(1.0, 0.05 * 2**attempt))  # DynamoDB asks the caller to back off
