"""Payouts in the payments table, as refunds are: one item under the payout's id.

Items (pk):
    po_...   a payout (`StoredPayout`): the contract's fields, plus `payout_user_id` (its
             owner; index PayoutIndex (payout_user_id, created_at) lists a user's payouts),
             `gateway_key` (the key the gateway sees, for asking it again), the gateway's
             `gateway_payout_id` and the screening's `fired_rules` (admins only).

While a payout is `pending` it is in ReconcileIndex (`open_status` "payout#pending",
`open_since` its creation: the attributes cashew.payments.store writes for its own open
records), so that reconciliation asks the gateway about one nobody settled; settling it
removes them. Not payer_id / payee_id: those would put a payout in PayerIndex / PayeeIndex.
A payout's status moves only out of `pending`, conditionally (`settle_item`), so the debit
written at its admission is reversed at most once and a payout is settled once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Self

from cashew import aws, clock, cursor, dynamo, ids
from cashew.config import get_settings
from cashew.payouts.models import PayoutList, PayoutResponse, PayoutStatus

PREFIX = "po_"
INDEX = "PayoutIndex"
OPEN_STATUS = "payout#pending"  # its key in ReconcileIndex while pending
_NEW = "attribute_not_exists(pk)"
_STATUS = {"#status": "status"}
_FIELDS = (
    "id", "amount", "currency", "payment_method_id", "status", "failure_code",
    "failure_message", "risk", "created_at", "updated_at",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class StoredPayout:
    payout: PayoutResponse
    user_id: str
    gateway_key: str
    gateway_payout_id: str | None = None
    fired_rules: tuple[str, ...] = ()

    def to_item(self) -> dict[str, Any]:
        p = self.payout
        return {
            "pk": p.id,
            **p.model_dump(mode="json", include=set(_FIELDS)),
            "payout_user_id": self.user_id,
            "gateway_key": self.gateway_key,
            "gateway_payout_id": self.gateway_payout_id,
            "fired_rules": list(self.fired_rules),
            **(
                {"open_status": OPEN_STATUS, "open_since": p.created_at}
                if p.status == "pending"
                else {}
            ),
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        fields = {name: item[name] for name in _FIELDS if name in item}
        return cls(
            PayoutResponse.model_validate(fields, strict=False),
            str(item["payout_user_id"]),
            str(item["gateway_key"]),
            item.get("gateway_payout_id"),
            tuple(item.get("fired_rules") or ()),
        )

    def settled(
        self,
        status: PayoutStatus,
        failure_code: str | None = None,
        failure_message: str | None = None,
        gateway_payout_id: str | None = None,
    ) -> StoredPayout:
        payout = self.payout.model_copy(
            update={
                "status": status,
                "failure_code": failure_code,
                "failure_message": failure_message,
                "updated_at": clock.utcnow_str(),
            }
        )
        return replace(
            self, payout=payout, gateway_payout_id=gateway_payout_id or self.gateway_payout_id
        )


def _table() -> str:
    return get_settings().payments_table


def put_item(stored: StoredPayout) -> dynamo.Write:
    """The payout's first write: conditional on its id being new."""
    return dynamo.put(_table(), stored.to_item(), condition=_NEW)


def settle_item(stored: StoredPayout) -> dynamo.Write:
    """Move the payout out of `pending` to what `stored` says, only if it is still pending:
    whoever settles it first (response, webhook, reconciliation) is the only one."""
    p = stored.payout
    return dynamo.update(
        _table(),
        {"pk": p.id},
        "SET #status = :to, failure_code = :code, failure_message = :message, "
        "updated_at = :now, gateway_payout_id = :gateway REMOVE open_status, open_since",
        condition="#status = :pending",
        names=_STATUS,
        values={
            ":to": p.status,
            ":code": p.failure_code,
            ":message": p.failure_message,
            ":now": p.updated_at,
            ":gateway": stored.gateway_payout_id,
            ":pending": "pending",
        },
    )


def note_gateway_item(payout_id: str, gateway_payout_id: str | None) -> dynamo.Write:
    """A payout the gateway keeps `pending`: its id at the gateway, while still pending."""
    return dynamo.update(
        _table(),
        {"pk": payout_id},
        "SET gateway_payout_id = :gateway",
        condition="#status = :pending",
        names=_STATUS,
        values={":gateway": gateway_payout_id, ":pending": "pending"},
    )


def get(payout_id: str) -> StoredPayout | None:
    if not ids.PATTERNS["po"].fullmatch(payout_id):
        return None
    item = dynamo.get_item(_table(), {"pk": payout_id})
    return StoredPayout.from_item(item) if item and str(item["pk"]).startswith(PREFIX) else None


def list_payouts(user_id: str, limit: int, start: str | None) -> PayoutList:
    """The user's payouts, newest first."""
    request: dict[str, Any] = {
        "TableName": _table(),
        "IndexName": INDEX,
        "KeyConditionExpression": "payout_user_id = :user",
        "ExpressionAttributeValues": dynamo.serialize({":user": user_id}),
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if start:
        fields = {
            "pk": ids.PATTERNS["po"],
            "payout_user_id": ids.PATTERNS["usr"],
            "created_at": clock.RFC3339,
        }
        key = cursor.decode(start, fields, payout_user_id=user_id)
        request["ExclusiveStartKey"] = dynamo.serialize(key)
    response = aws.dynamodb().query(**request)
    last = response.get("LastEvaluatedKey")
    data = [StoredPayout.from_item(dynamo.deserialize(i)).payout for i in response.get("Items", [])]
    next_cursor = cursor.encode(dynamo.deserialize(last)) if last else None
    return PayoutList(data=data, has_more=next_cursor is not None, next_cursor=next_cursor)


def from_image(image: Mapping[str, Any]) -> StoredPayout | None:
    """The payout of an item as the table's stream gives it (deserialized); None for any
    other item."""
    return StoredPayout.from_item(image) if str(image.get("pk", "")).startswith(PREFIX) else None


def owners_page(
    segment: int, segments: int, start: str | None, limit: int
) -> tuple[list[str], str | None]:
    """The owners of the payouts on one page of a segment of a consistent Scan of the
    payments table, for the audit's sweep; and where the next page starts."""
    items, next_start = dynamo.scan_page(
        _table(), segment, segments, start, limit, ProjectionExpression="pk, payout_user_id",
        FilterExpression="begins_with(pk, :prefix)",
        ExpressionAttributeValues=dynamo.serialize({":prefix": PREFIX}),
    )  # fmt: skip
    owners = dict.fromkeys(dynamo.string(raw, "payout_user_id") for raw in items)
    return [owner for owner in owners if owner], next_start


def payouts_of(user_id: str) -> Iterator[StoredPayout]:
    """Every payout of the user (PayoutIndex, every page), for the audit's re-checks."""
    request: dict[str, Any] = {
        "TableName": _table(),
        "IndexName": INDEX,
        "KeyConditionExpression": "payout_user_id = :user",
        "ExpressionAttributeValues": dynamo.serialize({":user": user_id}),
    }
    while True:
        response = aws.dynamodb().query(**request)
        for raw in response.get("Items", []):
            yield StoredPayout.from_item(dynamo.deserialize(raw))
        if "LastEvaluatedKey" not in response:
            return
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def all_payouts() -> Iterator[StoredPayout]:
    """Every payout (one consistent Scan of the payments table), for the audit."""
    request: dict[str, Any] = {
        "TableName": _table(),
        "ConsistentRead": True,
        "FilterExpression": "begins_with(pk, :prefix)",
        "ExpressionAttributeValues": dynamo.serialize({":prefix": PREFIX}),
    }
    while True:
        response = aws.dynamodb().scan(**request)
        for raw in response.get("Items", []):
            yield StoredPayout.from_item(dynamo.deserialize(raw))
        if "LastEvaluatedKey" not in response:
            return
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
