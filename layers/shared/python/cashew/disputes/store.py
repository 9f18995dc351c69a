"""The disputes table. Its stream carries every change of a dispute's status to the log.

Items (pk):
    dsp_<id>            a dispute (kind = "dispute"; in every index)
    OPEN#<payment id>   the payment has an open dispute: at most one at a time
Indexes: PayerIndex (payer_id), PayeeIndex (payee_id), StatusIndex (status), KindIndex
(kind: every dispute); each sorted by created_at.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any, Literal

from cashew import aws, clock, cursor, dynamo, ids
from cashew.config import get_settings

_INDEX = {
    "payer_id": "PayerIndex",
    "payee_id": "PayeeIndex",
    "status": "StatusIndex",
    "kind": "KindIndex",
}
KeyName = Literal["payer_id", "payee_id", "status", "kind"]


def _table() -> str:
    return get_settings().disputes_table


def _lock(payment_id: str) -> dict[str, str]:
    return {"pk": f"OPEN#{payment_id}"}


class AlreadyOpen(Exception):
    """The payment already has an open dispute."""


class Changed(Exception):
    """The dispute was not in the state the write expected; nothing was written."""


def open_dispute(item: dict[str, Any]) -> None:
    """The new dispute and its payment's open-dispute lock, together or not at all."""
    table = _table()
    lock = {**_lock(str(item["payment_id"])), "dispute_id": item["id"]}
    new_only = "attribute_not_exists(pk)"
    dispute = {"pk": item["id"], "kind": "dispute", **item}
    try:
        dynamo.Transaction().add("lock", dynamo.put(table, lock, condition=new_only)).add(
            "dispute", dynamo.put(table, dispute, condition=new_only)
        ).write()
    except dynamo.TransactionCanceled as exc:
        if exc.failed("lock"):
            raise AlreadyOpen(item["payment_id"]) from exc
        raise


def get(dispute_id: str) -> dict[str, Any] | None:
    if not ids.PATTERNS["dsp"].fullmatch(dispute_id):
        return None
    return dynamo.get_item(_table(), {"pk": dispute_id})


def claim(dispute_id: str, outcome: str, attempt: str) -> None:
    """Reserve an open dispute for resolving as `outcome` (a resolution that was interrupted
    can be claimed again for the same outcome, never for the other). The claim names the
    `attempt` holding it, so that only that attempt can release it."""
    try:
        dynamo.update_item(
            _table(),
            {"pk": dispute_id},
            "SET pending_outcome = :outcome, pending_attempt = :attempt",
            {":outcome": outcome, ":open": "open", ":attempt": attempt},
            condition="#status = :open AND "
            "(attribute_not_exists(pending_outcome) OR pending_outcome = :outcome)",
            names={"#status": "status"},
        )
    except dynamo.ConditionFailed as exc:
        raise Changed(dispute_id) from exc


def release(dispute_id: str, attempt: str) -> None:
    """Undo `attempt`'s claim: its resolution could not be carried out, and the dispute
    stays open. Nothing happens if another attempt has claimed it since (that attempt may
    be about to complete the resolution)."""
    with contextlib.suppress(dynamo.ConditionFailed):
        dynamo.update_item(
            _table(),
            {"pk": dispute_id},
            "REMOVE pending_outcome, pending_attempt",
            {":attempt": attempt, ":open": "open"},
            condition="#status = :open AND pending_attempt = :attempt",
            names={"#status": "status"},
        )


def resolve(item: dict[str, Any], outcome: str, changes: dict[str, Any]) -> None:
    """Close an open dispute as `outcome` and free its payment for a new dispute. A `won`
    must have been claimed first; a `lost` must not be claimed by a `won`."""
    table = _table()
    claimed = (
        "pending_outcome = :outcome"
        if outcome == "won"
        else "(attribute_not_exists(pending_outcome) OR pending_outcome = :outcome)"
    )
    values = {":outcome": outcome, ":open": "open", **{f":{k}": v for k, v in changes.items()}}
    assignments = ", ".join(f"{k} = :{k}" for k in changes)
    try:
        dynamo.Transaction().add(
            "dispute",
            dynamo.update(
                table,
                {"pk": item["id"]},
                f"SET #status = :outcome, {assignments} REMOVE pending_outcome, pending_attempt",
                condition=f"#status = :open AND {claimed}",
                names={"#status": "status"},
                values=values,
            ),
        ).add(
            "lock",
            dynamo.delete(
                table,
                _lock(str(item["payment_id"])),
                condition="dispute_id = :id",
                values={":id": item["id"]},
            ),
        ).write()
    except dynamo.TransactionCanceled as exc:
        if exc.failed("dispute"):
            raise Changed(item["id"]) from exc
        raise


_FIELDS = {"pk": ids.PATTERNS["dsp"], "created_at": clock.RFC3339}
_KEY_PATTERNS = {
    "payer_id": ids.PATTERNS["usr"],
    "payee_id": ids.PATTERNS["usr"],
    "status": re.compile("open|won|lost"),
    "kind": re.compile("dispute"),
}


def list_disputes(
    key_name: KeyName, key_value: str, limit: int, start: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    """The disputes with `key_name` = `key_value`, newest first."""
    request: dict[str, Any] = {
        "TableName": _table(),
        "IndexName": _INDEX[key_name],
        "KeyConditionExpression": "#key = :key",
        "ExpressionAttributeNames": {"#key": key_name},
        "ExpressionAttributeValues": dynamo.serialize({":key": key_value}),
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if start:
        fields = {**_FIELDS, key_name: _KEY_PATTERNS[key_name]}
        key = cursor.decode(start, fields, **{key_name: key_value})
        request["ExclusiveStartKey"] = dynamo.serialize(key)
    response = aws.dynamodb().query(**request)
    items = [dynamo.deserialize(i) for i in response.get("Items", [])]
    last = response.get("LastEvaluatedKey")
    return items, (cursor.encode(dynamo.deserialize(last)) if last else None)


def count(status: str, since: str, until: str) -> int:
    """How many disputes with `status` were opened between `since` and `until`."""
    request: dict[str, Any] = {
        "TableName": _table(),
        "IndexName": "StatusIndex",
        "KeyConditionExpression": "#status = :status AND created_at BETWEEN :since AND :until",
        "ExpressionAttributeNames": {"#status": "status"},
        "ExpressionAttributeValues": dynamo.serialize(
            {":status": status, ":since": since, ":until": until}
        ),
        "Select": "COUNT",
    }
    total = 0
    while True:
        response = aws.dynamodb().query(**request)
        total += int(response.get("Count", 0))
        if "LastEvaluatedKey" not in response:
            return total
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def all_disputes() -> Iterator[dict[str, Any]]:
    """Every dispute item (deserialized, locks left out), for the republisher: one Scan."""
    request: dict[str, Any] = {"TableName": _table(), "ConsistentRead": True}
    while True:
        response = aws.dynamodb().scan(**request)
        for raw in response.get("Items", []):
            item = dynamo.deserialize(raw)
            if str(item.get("pk", "")).startswith("dsp_"):
                yield item
        if "LastEvaluatedKey" not in response:
            return
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
