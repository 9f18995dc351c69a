"""The payments table: payments and refunds, each an item under its own id.

Items (pk):
    pay_...      a payment: the contract's fields, plus charge_id (the gateway's) and
                 fired_rules (admins only). Indexes PayerIndex (payer_id, created_at) and
                 PayeeIndex (payee_id, created_at).
    re_...       a refund: payment_id, amount, status, reason, created_at, gateway_refund_id,
                 and the payment's payment_payer_id and payment_payee_id.
                 Index RefundIndex (payment_id, created_at).
    WEBHOOK#<event id>
                 a gateway webhook already handled (deduplication); TTL.

A payment's status only moves through conditional updates (see cashew.payments.states).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from cashew import aws, clock, cursor, dynamo, ids
from cashew.config import get_settings
from cashew.payments.models import PaymentResponse, PaymentStatus, RefundResponse

Role = Literal["payer", "payee"]
_INDEX = {"payer": "PayerIndex", "payee": "PayeeIndex"}
_RECORD_ONLY = ("pk", "charge_id", "fired_rules")
_REFUND_RECORD_ONLY = (
    "pk",
    "gateway_refund_id",
    "payment_payer_id",
    "payment_payee_id",
    "payment_source",
)


_NEW = "attribute_not_exists(pk)"
_STATUS = {"#status": "status"}


@dataclass(frozen=True, slots=True)
class StoredPayment:
    payment: PaymentResponse
    charge_id: str | None
    fired_rules: list[str]


def _table() -> str:
    return get_settings().payments_table


def put_item(
    payment: PaymentResponse, fired_rules: list[str], charge_id: str | None = None
) -> dynamo.Write:
    """The payment's first write: conditional on its id being new."""
    item = {
        "pk": payment.id,
        **payment.model_dump(mode="json"),
        "fired_rules": fired_rules,
        "charge_id": charge_id,
    }
    return dynamo.put(_table(), item, condition=_NEW)


def stored(item: dict[str, Any]) -> StoredPayment:
    payment = PaymentResponse.model_validate(
        {k: v for k, v in item.items() if k not in _RECORD_ONLY}, strict=False
    )
    return StoredPayment(payment, item.get("charge_id"), list(item.get("fired_rules") or []))


def get(payment_id: str) -> StoredPayment | None:
    if not ids.PATTERNS["pay"].fullmatch(payment_id):
        return None
    item = dynamo.get_item(_table(), {"pk": payment_id})
    return stored(item) if item and item["pk"].startswith("pay_") else None


def transition_item(payment: PaymentResponse, to: PaymentStatus, **changes: Any) -> dynamo.Write:
    """Move the payment from its current status to `to` (with `changes`), only if nobody
    moved it meanwhile: one authorisation resolves once."""
    values = {":from": payment.status, ":to": to, **{f":{k}": v for k, v in changes.items()}}
    sets = ", ".join(["#status = :to", *(f"{k} = :{k}" for k in changes)])
    return dynamo.update(
        _table(),
        {"pk": payment.id},
        f"SET {sets}",
        condition="#status = :from",
        names=_STATUS,
        values=values,
    )


def refund_item(payment: PaymentResponse, amount: int, now: str) -> dynamo.Write:
    """Add `amount` to what was refunded, only while the total stays within what was
    captured (DynamoDB conditions cannot add, so: refunded so far <= captured - amount)."""
    return dynamo.update(
        _table(),
        {"pk": payment.id},
        "SET amount_refunded = amount_refunded + :amount, updated_at = :now",
        condition="#status = :succeeded AND amount_refunded <= :limit",
        names=_STATUS,
        values={
            ":amount": amount,
            ":now": now,
            ":succeeded": "succeeded",
            ":limit": payment.amount_captured - amount,
        },
    )


def put_refund_item(
    refund: RefundResponse, payment: PaymentResponse, gateway_refund_id: str | None
) -> dynamo.Write:
    """A new refund; it names the payment's payer and payee, whom its outcome concerns."""
    item = {
        "pk": refund.id,
        **refund.model_dump(mode="json"),
        "gateway_refund_id": gateway_refund_id,
        # Not payer_id / payee_id: those would put the refund in PayerIndex / PayeeIndex.
        "payment_payer_id": payment.payer_id,
        "payment_payee_id": payment.payee_id,
        "payment_source": payment.source.get("type"),
    }
    return dynamo.put(_table(), item, condition=_NEW)


def webhook_seen_item(event_id: str, expires_at: int) -> dynamo.Write:
    """Marks a gateway event as handled; fails if it was handled before."""
    item = {"pk": f"WEBHOOK#{event_id}", "expires_at": expires_at}
    return dynamo.put(_table(), item, condition=_NEW)


def get_refund(refund_id: str) -> RefundResponse | None:
    if not ids.PATTERNS["re"].fullmatch(refund_id):
        return None
    item = dynamo.get_item(_table(), {"pk": refund_id})
    return refund(item) if item else None


def settle_refund_item(refund_id: str, gateway_refund_id: str) -> dynamo.Write:
    """A pending card refund the gateway has confirmed."""
    return dynamo.update(
        _table(),
        {"pk": refund_id},
        "SET #status = :succeeded, gateway_refund_id = :gateway",
        condition="#status = :pending",
        names=_STATUS,
        values={":succeeded": "succeeded", ":pending": "pending", ":gateway": gateway_refund_id},
    )


def refund(item: dict[str, Any]) -> RefundResponse:
    return RefundResponse.model_validate(
        {k: v for k, v in item.items() if k not in _REFUND_RECORD_ONLY}
    )


def _page(
    *,
    index: str,
    key_name: str,
    key_value: str,
    limit: int,
    start: str | None,
    key_fields: dict[str, Any],
    status: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    request: dict[str, Any] = {
        "TableName": _table(),
        "IndexName": index,
        "KeyConditionExpression": f"{key_name} = :key",
        "ExpressionAttributeValues": {":key": {"S": key_value}},
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if status:
        request["FilterExpression"] = "#status = :status"
        request["ExpressionAttributeNames"] = {"#status": "status"}
        request["ExpressionAttributeValues"][":status"] = {"S": status}
    if start:
        fixed = {key_name: key_value}
        request["ExclusiveStartKey"] = dynamo.serialize(cursor.decode(start, key_fields, **fixed))
    response = aws.dynamodb().query(**request)
    last = response.get("LastEvaluatedKey")
    items = [dynamo.deserialize(i) for i in response.get("Items", [])]
    return items, (cursor.encode(dynamo.deserialize(last)) if last else None)


def list_payments(
    user_id: str, role: Role, status: str | None, limit: int, start: str | None
) -> tuple[list[StoredPayment], str | None]:
    """The user's payments as payer (or payee), newest first."""
    key_name = f"{role}_id"
    fields = {"pk": ids.PATTERNS["pay"], key_name: ids.PATTERNS["usr"], "created_at": clock.RFC3339}
    items, next_start = _page(
        index=_INDEX[role], key_name=key_name, key_value=user_id, limit=limit, start=start,
        key_fields=fields, status=status,
    )  # fmt: skip
    return [stored(i) for i in items], next_start


def list_refunds(
    payment_id: str, limit: int, start: str | None
) -> tuple[list[RefundResponse], str | None]:
    fields = {
        "pk": ids.PATTERNS["re"],
        "payment_id": ids.PATTERNS["pay"],
        "created_at": clock.RFC3339,
    }
    items, next_start = _page(
        index="RefundIndex", key_name="payment_id", key_value=payment_id, limit=limit,
        start=start, key_fields=fields,
    )  # fmt: skip
    return [refund(i) for i in items], next_start


def all_records() -> Iterator[dict[str, Any]]:
    """Every payment and refund item (deserialized), for the audit and the republisher:
    one consistent Scan, dedupe markers left out."""
    request: dict[str, Any] = {"TableName": _table(), "ConsistentRead": True}
    while True:
        response = aws.dynamodb().scan(**request)
        for raw in response.get("Items", []):
            item = dynamo.deserialize(raw)
            if str(item.get("pk", "")).startswith(("pay_", "re_")):
                yield item
        if "LastEvaluatedKey" not in response:
            return
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
