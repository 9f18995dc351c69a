"""The disputes table. Its stream carries every change of a dispute's status to the log.

Items (pk):
    dsp_<id>            a dispute (`StoredDispute`; kind = "dispute"; in every index)
    OPEN#<payment id>   the payment has an open dispute (`OpenLock`): at most one at a time
Indexes: PayerIndex (payer_id), PayeeIndex (payee_id), StatusIndex (status), KindIndex
(kind: every dispute); each sorted by created_at.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self

from pydantic import TypeAdapter

from cashew import aws, clock, cursor, dynamo, ids
from cashew.config import get_settings
from cashew.disputes.models import AdminDispute, Dispute, DisputeOutcome
from cashew.ledger.models import Funds

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


@dataclass(frozen=True, slots=True)
class StoredDispute:
    """A dispute item: the dispute as an admin sees it, with how the payer paid the payment
    (`source`, what the log's entries are about), when it last changed, and the claim of a
    resolution under way (`pending_outcome`, by `pending_attempt`)."""

    dispute: AdminDispute
    source: Funds
    updated_at: str
    pending_outcome: DisputeOutcome | None = None
    pending_attempt: str | None = None

    @property
    def public(self) -> Dispute:
        """What its payer and payee see: not who resolved it, nor their note."""
        d = self.dispute
        return Dispute(
            id=d.id, transaction_id=d.transaction_id, payment_id=d.payment_id,
            payer_id=d.payer_id, payee_id=d.payee_id, status=d.status, reason=d.reason,
            details=d.details, amount=d.amount, currency=d.currency, refund_id=d.refund_id,
            created_at=d.created_at, resolved_at=d.resolved_at,
        )  # fmt: skip

    def to_item(self) -> dict[str, Any]:
        """The item; the resolution's attributes only once it is resolved (an open dispute
        has none) and the claim's only while it is claimed."""
        d = self.dispute
        item: dict[str, Any] = {
            "pk": d.id,
            "kind": "dispute",
            "id": d.id,
            "transaction_id": d.transaction_id,
            "payment_id": d.payment_id,
            "payer_id": d.payer_id,
            "payee_id": d.payee_id,
            "status": d.status,
            "reason": d.reason,
            "details": d.details,
            "amount": d.amount,
            "currency": d.currency,
            "source": self.source,
            "created_at": d.created_at,
            "updated_at": self.updated_at,
        }
        resolution = {
            "refund_id": d.refund_id,
            "resolved_at": d.resolved_at,
            "resolved_by": d.resolved_by,
            "note": d.note,
        }
        item.update((k, v) for k, v in resolution.items() if d.status != "open" or v is not None)
        if self.pending_outcome is not None or self.pending_attempt is not None:
            item.update(pending_outcome=self.pending_outcome, pending_attempt=self.pending_attempt)
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        """The dispute an item holds. An item that is none (a field missing or of the wrong
        kind) is a KeyError or a ValueError (pydantic's ValidationError is one)."""
        dispute = AdminDispute.model_validate({
            "id": item.get("id"),
            "transaction_id": item.get("transaction_id"),
            "payment_id": item.get("payment_id"),
            "payer_id": item.get("payer_id"),
            "payee_id": item.get("payee_id"),
            "status": item.get("status"),
            "reason": item.get("reason"),
            "details": item.get("details"),
            "amount": item.get("amount"),
            "currency": item.get("currency"),
            "refund_id": item.get("refund_id"),
            "created_at": item.get("created_at"),
            "resolved_at": item.get("resolved_at"),
            "resolved_by": item.get("resolved_by"),
            "note": item.get("note"),
        })  # fmt: skip
        attempt = item.get("pending_attempt")
        return cls(
            dispute,
            _FUNDS.validate_python(item["source"]),
            str(item["updated_at"]),
            pending_outcome=_OUTCOME.validate_python(item.get("pending_outcome")),
            pending_attempt=str(attempt) if attempt is not None else None,
        )


_FUNDS: TypeAdapter[Funds] = TypeAdapter(Funds)
_OUTCOME: TypeAdapter[DisputeOutcome | None] = TypeAdapter(DisputeOutcome | None)


@dataclass(frozen=True, slots=True)
class OpenLock:
    """The payment's open-dispute lock: it names the one open dispute of `payment_id`."""

    payment_id: str
    dispute_id: str

    def to_item(self) -> dict[str, Any]:
        return {**_lock(self.payment_id), "dispute_id": self.dispute_id}

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        return cls(str(item["pk"]).removeprefix("OPEN#"), str(item["dispute_id"]))


class AlreadyOpen(Exception):
    """The payment already has an open dispute."""


class Changed(Exception):
    """The dispute was not in the state the write expected; nothing was written."""


def open_dispute(new: StoredDispute) -> None:
    """The new dispute and its payment's open-dispute lock, together or not at all."""
    table = _table()
    lock = OpenLock(new.dispute.payment_id, new.dispute.id).to_item()
    new_only = "attribute_not_exists(pk)"
    dispute = new.to_item()
    try:
        dynamo.Transaction().add("lock", dynamo.put(table, lock, condition=new_only)).add(
            "dispute", dynamo.put(table, dispute, condition=new_only)
        ).write()
    except dynamo.TransactionCanceled as exc:
        if exc.failed("lock"):
            raise AlreadyOpen(new.dispute.payment_id) from exc
        raise


def get(dispute_id: str) -> StoredDispute | None:
    if not ids.PATTERNS["dsp"].fullmatch(dispute_id):
        return None
    item = dynamo.get_item(_table(), {"pk": dispute_id})
    return StoredDispute.from_item(item) if item else None


def stored(pk: str) -> StoredDispute | None:
    """The dispute stored under any key (strongly consistent), for the republisher: None if
    nothing is, or a lock is. A dispute item that cannot be read raises as `from_item`."""
    item = dynamo.get_item(_table(), {"pk": pk}, consistent=True)
    if item is None or not str(item.get("pk", "")).startswith("dsp_"):
        return None
    return StoredDispute.from_item(item)


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


def resolve(resolved: StoredDispute) -> None:
    """Close an open dispute as `resolved` says (its status is the outcome; its refund,
    resolution time, resolver, note and `updated_at` are written) and free its payment for a
    new dispute. A `won` must have been claimed first; a `lost` must not be claimed by a
    `won`."""
    table, item, outcome = _table(), resolved.to_item(), resolved.dispute.status
    changes = {
        name: item[name]
        for name in ("refund_id", "resolved_at", "resolved_by", "note", "updated_at")
    }
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
) -> tuple[list[StoredDispute], str | None]:
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
    found = [StoredDispute.from_item(dynamo.deserialize(i)) for i in response.get("Items", [])]
    last = response.get("LastEvaluatedKey")
    return found, (cursor.encode(dynamo.deserialize(last)) if last else None)


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


class Unreadable(ValueError):
    """A dispute item that cannot be read as one (written by hand, or by a bug)."""

    def __init__(self, pk: str) -> None:
        super().__init__(f"the dispute item {pk} cannot be read")
        self.pk = pk


def changed_since(since: str) -> Iterator[StoredDispute]:
    """Every dispute whose last change (`updated_at`) is at or after `since`, for the
    republisher: one Scan (locks left out). A dispute item in that range that cannot be
    read raises `Unreadable`, and ends the iteration."""
    request: dict[str, Any] = {"TableName": _table(), "ConsistentRead": True}
    while True:
        response = aws.dynamodb().scan(**request)
        for raw in response.get("Items", []):
            pk = dynamo.string(raw, "pk")
            if pk.startswith("dsp_") and dynamo.string(raw, "updated_at") >= since:
                try:
                    dispute = StoredDispute.from_item(dynamo.deserialize(raw))
                except (KeyError, ValueError, TypeError, ArithmeticError) as error:
                    raise Unreadable(pk) from error
                yield dispute
        if "LastEvaluatedKey" not in response:
            return
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
