"""The webhooks table (WebhooksTable): endpoints, deliveries and the routes between events and
endpoints. Only this module builds its expressions or sees its items.

Items (pk):
    we_<id>                    an endpoint (`StoredEndpoint`; kind = "endpoint"): url, events,
                               status, its sealed secrets, `sequence` (the last one it was
                               given), failing_since (the first failure after a success)
    whd_<id>                   a delivery (`StoredDelivery`; kind = "delivery"): the exact
                               body it sends, attempts and their outcome; never a secret
    ROUTE#<evt id>#<we id>     the event went to the endpoint as `delivery_id` (`Route`): at
                               most one delivery per event and endpoint
Indexes: KindIndex (kind, created_at: every endpoint), EndpointIndex (endpoint_id, created_at:
an endpoint's deliveries), EndpointStatusIndex (endpoint_status = "<we id>#<status>",
created_at: an endpoint's deliveries in one status).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Self

from cashew import clock, cursor, dynamo, ids
from cashew.webhooks import settings
from cashew.webhooks.models import Delivery, DeliveryStatus, Endpoint, EndpointStatus


def _table() -> str:
    return settings.get().table


@dataclass(frozen=True, slots=True)
class SealedSecret:
    ciphertext: bytes
    created_at: str
    expires_at: str | None = None  # None: the current secret

    def live(self, now: str) -> bool:
        return self.expires_at is None or self.expires_at > now


@dataclass(frozen=True, slots=True)
class StoredEndpoint:
    endpoint: Endpoint
    secrets: tuple[SealedSecret, ...]
    sequence: int = 0
    secrets_version: int = 0
    failing_since: str | None = None

    def to_item(self) -> dict[str, Any]:
        e = self.endpoint
        item: dict[str, Any] = {
            "pk": e.id, "kind": "endpoint", "id": e.id, "url": e.url, "events": list(e.events),
            "status": e.status, "created_at": e.created_at, "sequence": self.sequence,
            "secrets_version": self.secrets_version,
            "secrets": [
                {"ciphertext": s.ciphertext, "created_at": s.created_at,
                 **({"expires_at": s.expires_at} if s.expires_at else {})}
                for s in self.secrets
            ],
        }  # fmt: skip
        if e.description is not None:
            item["description"] = e.description
        if self.failing_since is not None:
            item["failing_since"] = self.failing_since
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        endpoint = Endpoint.model_validate({
            "id": item["id"], "url": item["url"], "events": list(item["events"]),
            "description": item.get("description"), "status": item["status"],
            "created_at": item["created_at"],
        })  # fmt: skip
        sealed = tuple(
            SealedSecret(bytes(s["ciphertext"]), str(s["created_at"]), s.get("expires_at"))
            for s in item["secrets"]
        )
        return cls(
            endpoint, sealed, int(item["sequence"]), int(item.get("secrets_version", 0)),
            item.get("failing_since"),
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class StoredDelivery:
    delivery: Delivery
    endpoint_id: str
    body: str  # the exact JSON the endpoint receives (the contract's objects only)
    lease_until: int | None = None

    def to_item(self) -> dict[str, Any]:
        d = self.delivery
        item: dict[str, Any] = {
            "pk": d.id, "kind": "delivery", "id": d.id, "endpoint_id": self.endpoint_id,
            "endpoint_status": f"{self.endpoint_id}#{d.status}", "event_id": d.event_id,
            "event_type": d.event_type, "sequence": d.sequence, "attempts": d.attempts,
            "status": d.status, "created_at": d.created_at, "body": self.body,
        }  # fmt: skip
        optional = {
            "last_response_status": d.last_response_status,
            "last_error": d.last_error,
            "next_attempt_at": d.next_attempt_at,
            "lease_until": self.lease_until,
        }
        item.update((k, v) for k, v in optional.items() if v is not None)
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        delivery = Delivery.model_validate({
            "id": item["id"], "event_id": item["event_id"], "event_type": item["event_type"],
            "sequence": item["sequence"], "attempts": item["attempts"], "status": item["status"],
            "last_response_status": item.get("last_response_status"),
            "last_error": item.get("last_error"), "next_attempt_at": item.get("next_attempt_at"),
            "created_at": item["created_at"],
        })  # fmt: skip
        lease = item.get("lease_until")
        return cls(delivery, str(item["endpoint_id"]), str(item["body"]), lease)


@dataclass(frozen=True, slots=True)
class Route:
    event_id: str
    endpoint_id: str
    delivery_id: str = field(default="")

    @property
    def pk(self) -> str:
        return f"ROUTE#{self.event_id}#{self.endpoint_id}"

    def to_item(self) -> dict[str, Any]:
        return {"pk": self.pk, "delivery_id": self.delivery_id}


# ------------------------------------------------------------------------------ endpoints
def create_endpoint(stored: StoredEndpoint) -> None:
    dynamo.put_item(_table(), stored.to_item(), "attribute_not_exists(pk)")


def get_endpoint(endpoint_id: str) -> StoredEndpoint | None:
    item = dynamo.get_item(_table(), {"pk": endpoint_id})
    return StoredEndpoint.from_item(item) if item and item.get("kind") == "endpoint" else None


_ENDPOINT_CURSOR = {
    "pk": ids.PATTERNS["we"],
    "created_at": clock.RFC3339,
    "kind": re.compile("endpoint"),
}


def list_endpoints(limit: int, start: str | None) -> tuple[list[StoredEndpoint], str | None]:
    """Endpoints, newest first."""
    key = cursor.decode(start, _ENDPOINT_CURSOR, kind="endpoint") if start else None
    items, last = dynamo.query(
        _table(), "kind = :kind", {":kind": "endpoint"}, index="KindIndex", limit=limit,
        newest_first=True, start_key=key,
    )  # fmt: skip
    return [StoredEndpoint.from_item(i) for i in items], cursor.encode(last) if last else None


def all_endpoints() -> Iterator[StoredEndpoint]:
    start: dict[str, Any] | None = None
    while True:
        items, last = dynamo.query(
            _table(), "kind = :kind", {":kind": "endpoint"}, index="KindIndex", start_key=start
        )
        yield from (StoredEndpoint.from_item(i) for i in items)
        if last is None:
            return
        start = last


def update_endpoint(
    endpoint_id: str,
    *,
    events: list[str] | None,
    description: str | None,
    status: EndpointStatus | None,
) -> StoredEndpoint:
    """The endpoint after the update (ConditionFailed: there is none). Enabling it again
    forgets its failures: it gets 24 h again before it is disabled."""
    sets, removes = ["updated_at = :now"], []
    values: dict[str, Any] = {":now": clock.utcnow_str(), ":kind": "endpoint"}
    if events is not None:
        sets.append("events = :events")
        values[":events"] = events
    if description is not None:
        sets.append("description = :description")
        values[":description"] = description
    if status is not None:
        sets.append("#status = :status")
        values[":status"] = status
        if status == "enabled":
            removes.append("failing_since")
    expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    item = dynamo.update_item(
        _table(), {"pk": endpoint_id}, expression, values,
        condition="attribute_exists(pk) AND kind = :kind", names={"#status": "status"}
        if status is not None else None, return_new=True,
    )  # fmt: skip
    assert item is not None  # nosec B101 # ALL_NEW of an update that succeeded
    return StoredEndpoint.from_item(item)


def delete_endpoint(endpoint_id: str) -> None:
    dynamo.delete_item(
        _table(), {"pk": endpoint_id}, "attribute_exists(pk) AND kind = :kind",
        values={":kind": "endpoint"},
    )  # fmt: skip


def replace_secrets(stored: StoredEndpoint, secrets: tuple[SealedSecret, ...]) -> None:
    """The endpoint's secrets replaced, if no other rotation came first (ConditionFailed)."""
    updated = replace(stored, secrets=secrets)
    dynamo.update_item(
        _table(), {"pk": stored.endpoint.id},
        "SET secrets = :secrets, secrets_version = :next",
        {":secrets": updated.to_item()["secrets"], ":next": stored.secrets_version + 1,
         ":version": stored.secrets_version},
        condition="attribute_exists(pk) AND secrets_version = :version",
    )  # fmt: skip


def mark_failing(endpoint_id: str, now: str) -> str | None:
    """Since when the endpoint has failed everything (now, unless it already was failing);
    None when the endpoint is gone."""
    try:
        item = dynamo.update_item(
            _table(), {"pk": endpoint_id}, "SET failing_since = if_not_exists(failing_since, :now)",
            {":now": now}, condition="attribute_exists(pk)", return_new=True,
        )  # fmt: skip
    except dynamo.ConditionFailed:
        return None
    return str(item["failing_since"]) if item else None


def clear_failing(endpoint_id: str) -> None:
    with contextlib.suppress(dynamo.ConditionFailed):  # it was not failing, or it is gone
        dynamo.update_item(
            _table(), {"pk": endpoint_id}, "REMOVE failing_since", {},
            condition="attribute_exists(failing_since)",
        )  # fmt: skip


def disable_if_failing_since(endpoint_id: str, cutoff: str) -> bool:
    """Disable the endpoint if it is enabled and has failed everything since `cutoff` or
    before; True only for the one call that disabled it."""
    try:
        dynamo.update_item(
            _table(), {"pk": endpoint_id}, "SET #status = :disabled, disabled_at = :now",
            {":disabled": "disabled", ":enabled": "enabled", ":cutoff": cutoff,
             ":now": clock.utcnow_str()},
            condition="#status = :enabled AND failing_since <= :cutoff",
            names={"#status": "status"},
        )  # fmt: skip
    except dynamo.ConditionFailed:
        return False
    return True


# ----------------------------------------------------------------------------- deliveries
class AlreadyRouted(Exception):
    """The event already went to the endpoint."""


class SequenceMoved(Exception):
    """Another delivery took the sequence number first (or the endpoint is not enabled)."""


def route(endpoint: StoredEndpoint, delivery: StoredDelivery) -> None:
    """One transaction: the route (once per event and endpoint), the delivery, and the
    endpoint's counter moved from the sequence it had to the delivery's."""
    route_item = Route(delivery.delivery.event_id, endpoint.endpoint.id, delivery.delivery.id)
    new = "attribute_not_exists(pk)"
    tx = (
        dynamo.Transaction()
        .add("route", dynamo.put(_table(), route_item.to_item(), condition=new))
        .add("delivery", dynamo.put(_table(), delivery.to_item(), condition=new))
        .add(
            "sequence",
            dynamo.update(
                _table(), {"pk": endpoint.endpoint.id}, "SET #seq = :next",
                condition="#seq = :current AND #status = :enabled",
                names={"#seq": "sequence", "#status": "status"},
                values={":next": delivery.delivery.sequence, ":current": endpoint.sequence,
                        ":enabled": "enabled"},
            ),
        )
    )  # fmt: skip
    try:
        tx.write()
    except dynamo.TransactionCanceled as exc:
        if exc.failed("route"):
            raise AlreadyRouted from exc
        if exc.failed("sequence") or exc.retryable:
            raise SequenceMoved from exc
        raise


def routed(event_id: str, endpoint_id: str) -> str | None:
    """The delivery the event became for the endpoint, if it was routed there."""
    item = dynamo.get_item(_table(), {"pk": Route(event_id, endpoint_id).pk})
    return str(item["delivery_id"]) if item else None


def get_delivery(delivery_id: str) -> StoredDelivery | None:
    item = dynamo.get_item(_table(), {"pk": delivery_id})
    return StoredDelivery.from_item(item) if item and item.get("kind") == "delivery" else None


def claim_attempt(stored: StoredDelivery, now: int, lease_seconds: int) -> bool:
    """Take the delivery's next attempt (attempts + 1) for `lease_seconds`; False if another
    sender has it, it moved on, or it is no longer pending: then nothing is sent."""
    try:
        dynamo.update_item(
            _table(), {"pk": stored.delivery.id}, "SET attempts = :next, lease_until = :lease",
            {":next": stored.delivery.attempts + 1, ":current": stored.delivery.attempts,
             ":lease": now + lease_seconds, ":now": now, ":pending": "pending"},
            condition="#status = :pending AND attempts = :current AND "
            "(attribute_not_exists(lease_until) OR lease_until < :now)",
            names={"#status": "status"},
        )  # fmt: skip
    except dynamo.ConditionFailed:
        return False
    return True


def finish_attempt(  # noqa: PLR0917 - one attempt's whole outcome
    stored: StoredDelivery,
    attempt: int,
    status: DeliveryStatus,
    response_status: int | None,
    error: str | None,
    next_attempt_at: str | None,
) -> bool:
    """Record attempt number `attempt`'s outcome, if it is still the delivery's latest."""
    sets = ["#status = :status", "endpoint_status = :es"]
    values: dict[str, Any] = {
        ":status": status, ":es": f"{stored.endpoint_id}#{status}", ":attempt": attempt,
        ":pending": "pending",
    }  # fmt: skip
    removes = ["lease_until"]
    for name, value in (
        ("last_response_status", response_status),
        ("last_error", error),
        ("next_attempt_at", next_attempt_at),
    ):
        if value is None:
            removes.append(name)
        else:
            sets.append(f"{name} = :{name}")
            values[f":{name}"] = value
    try:
        dynamo.update_item(
            _table(), {"pk": stored.delivery.id},
            "SET " + ", ".join(sets) + " REMOVE " + ", ".join(removes), values,
            condition="attempts = :attempt AND #status = :pending", names={"#status": "status"},
        )  # fmt: skip
    except dynamo.ConditionFailed:
        return False
    return True


def requeue(stored: StoredDelivery, now: str) -> StoredDelivery:
    """A failed (or pending) delivery due again now. An attempt in flight keeps its lease:
    no other sender may send it until that attempt is recorded (or its lease runs out), so
    a retry never makes a second concurrent send, nor a second success."""
    item = dynamo.update_item(
        _table(), {"pk": stored.delivery.id},
        "SET #status = :pending, endpoint_status = :es, next_attempt_at = :now",
        {":pending": "pending", ":es": f"{stored.endpoint_id}#pending", ":now": now,
         ":succeeded": "succeeded"},
        condition="attribute_exists(pk) AND #status <> :succeeded", names={"#status": "status"},
        return_new=True,
    )  # fmt: skip
    assert item is not None  # nosec B101 # ALL_NEW of an update that succeeded
    return StoredDelivery.from_item(item)


_DELIVERY_CURSOR = {"pk": ids.PATTERNS["whd"], "created_at": clock.RFC3339}


def list_deliveries(
    endpoint_id: str, status: DeliveryStatus | None, limit: int, start: str | None
) -> tuple[list[StoredDelivery], str | None]:
    """An endpoint's deliveries (in `status`), newest first."""
    if status is None:
        name, value, index = "endpoint_id", endpoint_id, "EndpointIndex"
        pattern = ids.PATTERNS["we"]
    else:
        name, value, index = "endpoint_status", f"{endpoint_id}#{status}", "EndpointStatusIndex"
        pattern = re.compile(re.escape(value))
    key = None
    if start:
        key = cursor.decode(start, {**_DELIVERY_CURSOR, name: pattern}, **{name: value})
    items, last = dynamo.query(
        _table(), f"{name} = :value", {":value": value}, index=index, limit=limit,
        newest_first=True, start_key=key,
    )  # fmt: skip
    return [StoredDelivery.from_item(i) for i in items], cursor.encode(last) if last else None
