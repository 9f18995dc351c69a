"""The payments table: payments and refunds, each an item under its own id.

Items (pk), each read and written only as its record (`from_item` / `to_item`):
    pay_...      a payment (`StoredPayment`): the contract's fields, plus charge_id (the
                 gateway's) and fired_rules (admins only). Indexes PayerIndex (payer_id,
                 created_at) and PayeeIndex (payee_id, created_at).
    re_...       a refund (`StoredRefund`): payment_id, amount, status, reason, created_at,
                 gateway_refund_id, and the payment's payment_payer_id, payment_payee_id
                 and payment_source. Index RefundIndex (payment_id, created_at).
    WEBHOOK#<event id>
                 a gateway webhook already handled (`WebhookMarker`, deduplication); TTL.

ReconcileIndex (open_status, open_since), sparse: a payment or refund is in it only while it
is open (`OPEN`: a payment processing, requires_capture or requires_action, a refund
pending), keyed `<kind>#<status>` and the time it entered that status. The write helpers
below (`put_item`, `transition_item`, `put_refund_item`, `settle_refund_item`) keep the two
attributes, so every writer does: they are set on entering an open status and removed on
leaving it. Reconciliation pages through it (cashew.payments.reconcile), never the table.

A payment's status only moves through conditional updates (see cashew.payments.states).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, Self

from cashew import aws, clock, cursor, dynamo, ids
from cashew.config import get_settings
from cashew.payments.models import PaymentResponse, PaymentStatus, RefundResponse

Role = Literal["payer", "payee"]
_INDEX = {"payer": "PayerIndex", "payee": "PayeeIndex"}
_WEBHOOK = "WEBHOOK#"


def _present(item: Mapping[str, Any], *names: str) -> dict[str, Any]:
    """The attributes `names` that `item` holds: a missing one stays missing, so the model
    reports it as missing (a pydantic ValidationError, as for any other bad field)."""
    return {name: item[name] for name in names if name in item}


_NEW = "attribute_not_exists(pk)"
OPEN: dict[str, tuple[str, ...]] = {
    "payment": ("processing", "requires_capture", "requires_action"),
    "refund": ("pending",),
    "payout": ("pending",),  # written by cashew.payouts.store, which this store cannot see
}
"""The statuses in which a record is open (in ReconcileIndex), per kind."""
RECONCILE_INDEX = "ReconcileIndex"


def open_key(kind: str, status: str) -> str | None:
    """ReconcileIndex's `open_status` of a `kind` record in `status`; None when closed."""
    return f"{kind}#{status}" if status in OPEN.get(kind, ()) else None


def _with_open(item: dict[str, Any], kind: str, status: str, since: str) -> dict[str, Any]:
    key = open_key(kind, status)
    return {**item, "open_status": key, "open_since": since} if key else item


_STATUS = {"#status": "status"}


@dataclass(frozen=True, slots=True)
class StoredPayment:
    """A payment as stored: the contract's payment, the gateway's charge id and the
    screening rules that fired (admins only)."""

    payment: PaymentResponse
    charge_id: str | None
    fired_rules: list[str]

    @property
    def pk(self) -> str:
        return self.payment.id

    def to_item(self) -> dict[str, Any]:
        p = self.payment
        return {
            "pk": p.id,
            "id": p.id,
            "type": p.type,
            "status": p.status,
            "amount": p.amount,
            "currency": p.currency,
            "payer_id": p.payer_id,
            "payee_id": p.payee_id,
            "source": dict(p.source),
            "amount_captured": p.amount_captured,
            "amount_refunded": p.amount_refunded,
            "failure_code": p.failure_code,
            "failure_message": p.failure_message,
            "risk": p.risk.model_dump(mode="json"),
            "description": p.description,
            "next_action": p.next_action.model_dump(mode="json") if p.next_action else None,
            "cancellation_reason": p.cancellation_reason,
            "created_at": p.created_at,
            "updated_at": p.updated_at,
            "fired_rules": list(self.fired_rules),
            "charge_id": self.charge_id,
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        fields = _present(
            item, "id", "type", "status", "amount", "currency", "payer_id", "payee_id",
            "source", "amount_captured", "amount_refunded", "failure_code",
            "failure_message", "risk", "description", "next_action", "cancellation_reason",
            "created_at", "updated_at",
        )  # fmt: skip
        payment = PaymentResponse.model_validate(fields, strict=False)
        return cls(payment, item.get("charge_id"), list(item.get("fired_rules") or []))


@dataclass(frozen=True, slots=True)
class StoredRefund:
    """A refund as stored: the contract's refund, the gateway's refund id (a card refund,
    once settled), and how its payment was paid and by and to whom, which its outcome
    concerns (None in a refund stored before they were recorded)."""

    refund: RefundResponse
    gateway_refund_id: str | None
    payment_payer_id: str | None
    payment_payee_id: str | None
    payment_source: str | None
    request_pk: str | None = None
    """The idempotency record of the request that made it (None before it was recorded)."""

    @property
    def pk(self) -> str:
        return self.refund.id

    def to_item(self) -> dict[str, Any]:
        r = self.refund
        return {
            "pk": r.id,
            "id": r.id,
            "payment_id": r.payment_id,
            "amount": r.amount,
            "currency": r.currency,
            "status": r.status,
            "reason": r.reason,
            "created_at": r.created_at,
            "gateway_refund_id": self.gateway_refund_id,
            # Not payer_id / payee_id: those would put the refund in PayerIndex / PayeeIndex.
            "payment_payer_id": self.payment_payer_id,
            "payment_payee_id": self.payment_payee_id,
            "payment_source": self.payment_source,
            **({"request_pk": self.request_pk} if self.request_pk is not None else {}),
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        fields = _present(
            item, "id", "payment_id", "amount", "currency", "status", "reason", "created_at"
        )
        return cls(
            RefundResponse.model_validate(fields),
            item.get("gateway_refund_id"),
            item.get("payment_payer_id"),
            item.get("payment_payee_id"),
            item.get("payment_source"),
            item.get("request_pk"),
        )

    def with_status(self, status: Literal["succeeded", "pending", "failed"]) -> StoredRefund:
        return replace(self, refund=self.refund.model_copy(update={"status": status}))


@dataclass(frozen=True, slots=True)
class WebhookMarker:
    """A gateway event already handled; the table's TTL removes it at `expires_at`."""

    event_id: str
    expires_at: int

    def to_item(self) -> dict[str, Any]:
        return {"pk": f"{_WEBHOOK}{self.event_id}", "expires_at": self.expires_at}

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        pk = str(item["pk"])
        if not pk.startswith(_WEBHOOK):
            raise ValueError("not a webhook marker")
        return cls(pk.removeprefix(_WEBHOOK), int(item["expires_at"]))


Record = StoredPayment | StoredRefund
"""A payment or a refund: the items whose changes are outcomes."""


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A payment or refund item that is not one as stored (written by hand, or by a bug):
    its key, why it cannot be read, and the time it says it last changed (`changed_at`,
    as a record's: the updated_at of a payment, the created_at of a refund)."""

    pk: str
    error: Exception
    changed_at: str


def changed_at(record: Record) -> str:
    """When the record last changed, as far as it says: a payment's updated_at; a refund's
    created_at (it records no time of its settlement)."""
    if isinstance(record, StoredRefund):
        return record.refund.created_at
    return record.payment.updated_at


def record(item: Mapping[str, Any]) -> Record | Unreadable:
    """The payment or refund an item (deserialized, its pk pay_... or re_...) holds."""
    pk = str(item["pk"])
    refund = pk.startswith("re_")
    try:
        return StoredRefund.from_item(item) if refund else StoredPayment.from_item(item)
    except (KeyError, ValueError, TypeError) as exc:  # ValidationError is a ValueError
        at = str(item.get("created_at" if refund else "updated_at", ""))
        return Unreadable(pk, exc, at)


def _record_of(raw: Mapping[str, Any]) -> Record | Unreadable:
    """`record` of an item as DynamoDB gives it (wire format): one that does not even
    deserialize (a number edited to 10.5) is `Unreadable` too, with the key and time its
    strings still say, rather than a failure of the whole read."""
    try:
        item = dynamo.deserialize(raw)
    except dynamo.UNDESERIALIZABLE as exc:
        pk = dynamo.string(raw, "pk")
        at = dynamo.string(raw, "created_at" if pk.startswith("re_") else "updated_at")
        return Unreadable(pk, exc, at)
    return record(item)


def from_image(image: Mapping[str, Any]) -> Record | None:
    """The payment or refund of an item as the table's stream gives it (deserialized); None
    for any other item (a webhook marker). Raises as `from_item` does."""
    pk = str(image.get("pk", ""))
    if pk.startswith("pay_"):
        return StoredPayment.from_item(image)
    if pk.startswith("re_"):
        return StoredRefund.from_item(image)
    return None


def _table() -> str:
    return get_settings().payments_table


def put_item(
    payment: PaymentResponse, fired_rules: list[str], charge_id: str | None = None
) -> dynamo.Write:
    """The payment's first write: conditional on its id being new."""
    item = StoredPayment(payment, charge_id, fired_rules).to_item()
    item = _with_open(item, "payment", payment.status, payment.updated_at)
    return dynamo.put(_table(), item, condition=_NEW)


def get(payment_id: str) -> StoredPayment | None:
    if not ids.PATTERNS["pay"].fullmatch(payment_id):
        return None
    item = dynamo.get_item(_table(), {"pk": payment_id})
    return StoredPayment.from_item(item) if item and item["pk"].startswith("pay_") else None


def transition_item(payment: PaymentResponse, to: PaymentStatus, **changes: Any) -> dynamo.Write:
    """Move the payment from its current status to `to` (with `changes`), only if nobody
    moved it meanwhile: one authorisation resolves once. It keeps ReconcileIndex's keys: set
    (since now) when `to` is open, removed when it is not."""
    values = {":from": payment.status, ":to": to, **{f":{k}": v for k, v in changes.items()}}
    sets = ["#status = :to", *(f"{k} = :{k}" for k in changes)]
    key = open_key("payment", to)
    if key is None:
        index = " REMOVE open_status, open_since"
    else:
        sets.append("open_status = :open_status, open_since = :open_since")
        values |= {
            ":open_status": key,
            ":open_since": changes.get("updated_at") or clock.utcnow_str(),
        }
        index = ""
    return dynamo.update(
        _table(),
        {"pk": payment.id},
        f"SET {', '.join(sets)}{index}",
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
    refund: RefundResponse,
    payment: PaymentResponse,
    gateway_refund_id: str | None,
    request_pk: str | None = None,
) -> dynamo.Write:
    """A new refund; it names the payment's payer and payee, whom its outcome concerns, and
    the idempotency record of the request making it (`request_pk`: how reconciliation
    resumes a pending card refund as that request's retry would)."""
    item = StoredRefund(
        refund, gateway_refund_id, payment.payer_id, payment.payee_id, payment.source.get("type"),
        request_pk,
    ).to_item()  # fmt: skip
    item = _with_open(item, "refund", refund.status, refund.created_at)
    return dynamo.put(_table(), item, condition=_NEW)


def webhook_seen_item(event_id: str, expires_at: int) -> dynamo.Write:
    """Marks a gateway event as handled; fails if it was handled before."""
    return dynamo.put(_table(), WebhookMarker(event_id, expires_at).to_item(), condition=_NEW)


def get_refund(refund_id: str) -> StoredRefund | None:
    if not ids.PATTERNS["re"].fullmatch(refund_id):
        return None
    item = dynamo.get_item(_table(), {"pk": refund_id})
    return StoredRefund.from_item(item) if item else None


def settle_refund_item(refund_id: str, gateway_refund_id: str) -> dynamo.Write:
    """A pending card refund the gateway has confirmed."""
    return dynamo.update(
        _table(),
        {"pk": refund_id},
        "SET #status = :succeeded, gateway_refund_id = :gateway REMOVE open_status, open_since",
        condition="#status = :pending",
        names=_STATUS,
        values={":succeeded": "succeeded", ":pending": "pending", ":gateway": gateway_refund_id},
    )


def due(open_status: str, before: str, limit: int) -> Iterator[str]:
    """The keys of the records open in `open_status` (ReconcileIndex) since before `before`,
    oldest first, page after page (`limit` per page). The index is eventually consistent:
    the caller reads each record again before acting on it."""
    start: dict[str, Any] | None = None
    while True:
        items, start = dynamo.query(
            _table(),
            "open_status = :status AND open_since <= :before",
            {":status": open_status, ":before": before},
            index=RECONCILE_INDEX,
            limit=limit,
            start_key=start,
        )
        yield from (str(i["pk"]) for i in items)
        if start is None:
            return


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
    return [StoredPayment.from_item(i) for i in items], next_start


def list_refunds(
    payment_id: str, limit: int, start: str | None
) -> tuple[list[StoredRefund], str | None]:
    fields = {
        "pk": ids.PATTERNS["re"],
        "payment_id": ids.PATTERNS["pay"],
        "created_at": clock.RFC3339,
    }
    items, next_start = _page(
        index="RefundIndex", key_name="payment_id", key_value=payment_id, limit=limit,
        start=start, key_fields=fields,
    )  # fmt: skip
    return [StoredRefund.from_item(i) for i in items], next_start


def all_records() -> Iterator[Record | Unreadable]:
    """Every payment and refund (an `Unreadable` for an item that is not one as stored), for
    the audit and the republisher: one consistent Scan, webhook markers left out."""
    request: dict[str, Any] = {"TableName": _table(), "ConsistentRead": True}
    while True:
        response = aws.dynamodb().scan(**request)
        for raw in response.get("Items", []):
            if dynamo.string(raw, "pk").startswith(("pay_", "re_")):
                yield _record_of(raw)
        if "LastEvaluatedKey" not in response:
            return
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def records_page(
    segment: int, segments: int, start: str | None, limit: int
) -> tuple[list[Record | Unreadable], str | None]:
    """The payments and refunds on one page of a segment of a consistent Scan of the
    table (webhook markers and payouts left out), for the audit's sweep; and where the next
    page starts."""
    items, next_start = dynamo.scan_page(_table(), segment, segments, start, limit)
    kept = [raw for raw in items if dynamo.string(raw, "pk").startswith(("pay_", "re_"))]
    return [_record_of(raw) for raw in kept], next_start


def records_of(user_id: str) -> Iterator[Record | Unreadable]:
    """The payments the user paid or was paid (PayerIndex, PayeeIndex) and the refunds of
    those that refunded anything (RefundIndex), for the audit's re-checks. Indexes are
    eventually consistent: a change they do not show yet is seen by a later re-check."""
    table = _table()
    for index, key in (("PayerIndex", "payer_id"), ("PayeeIndex", "payee_id")):
        request = {
            "TableName": table,
            "IndexName": index,
            "KeyConditionExpression": f"{key} = :user",
            "ExpressionAttributeValues": dynamo.serialize({":user": user_id}),
        }
        for raw in _query(request):
            found = _record_of(raw)
            yield found
            # An unreadable payment may have refunds too: they are read (and named) as well.
            if isinstance(found, StoredPayment) and not found.payment.amount_refunded:
                continue
            yield from map(_record_of, _query({
                "TableName": table,
                "IndexName": "RefundIndex",
                "KeyConditionExpression": "payment_id = :payment",
                "ExpressionAttributeValues": dynamo.serialize(
                    {":payment": dynamo.string(raw, "pk")}
                ),
            }))  # fmt: skip


def _query(request: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every item a Query returns, as DynamoDB gives it (wire format), page after page."""
    while True:
        response = aws.dynamodb().query(**request)
        yield from response.get("Items", [])
        if "LastEvaluatedKey" not in response:
            return
        request = {**request, "ExclusiveStartKey": response["LastEvaluatedKey"]}


def read(pk: str) -> Record | Unreadable | None:
    """The payment or refund stored under `pk` (strongly consistent); None when no item is
    stored there whose changes are outcomes (none at all, or a webhook marker)."""
    if not pk.startswith(("pay_", "re_")):
        return None
    raw = dynamo.get_raw_item(_table(), {"pk": pk})
    return _record_of(raw) if raw is not None else None
