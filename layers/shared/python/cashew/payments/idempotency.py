"""Idempotency records for money-moving requests (Stripe's semantics).

A record is keyed by caller and key, holds a hash of the request and, once complete, the
response to replay. It is written in the same TransactWriteItems as the money, so a request
either moved money and recorded its response, or did neither.

    pk = <user id>#<key>   status = in_progress | completed
    request_hash, payment_id, status_code, response_body, created_at, expires_at (TTL),
    lease_until: while it is in the future, the request that wrote the record may still be
    running (the lease outlives the function's timeout), so a duplicate gets 409. Once it has
    passed, a retry takes the record over and settles the outcome by asking the gateway.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cashew import clock, dynamo
from cashew.config import get_settings
from cashew.errors import IdempotencyInProgressError, IdempotencyKeyReusedError


@dataclass(frozen=True, slots=True)
class Scope:
    """One caller's use of one key for one request."""

    user_id: str
    key: str
    request_hash: str

    @property
    def pk(self) -> str:
        return f"{self.user_id}#{self.key}"

    @property
    def gateway_key(self) -> str:
        """What the gateway sees: stable for this caller and key, opaque otherwise."""
        return hashlib.sha256(self.pk.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Replay:
    status_code: int
    body: str


def scope(user_id: str, key: str, operation: str, body: dict[str, Any]) -> Scope:
    canonical = json.dumps([operation, body], sort_keys=True, separators=(",", ":"))
    return Scope(user_id, key, hashlib.sha256(canonical.encode()).hexdigest())


def _table() -> str:
    return get_settings().idempotency_table


def _expiry() -> int:
    return clock.epoch() + get_settings().idempotency_ttl


def completed_item(s: Scope, payment_id: str, status_code: int, body: str) -> dict[str, Any]:
    """A first-and-final record (requests that complete in one transaction)."""
    item = {
        "pk": s.pk,
        "status": "completed",
        "request_hash": s.request_hash,
        "payment_id": payment_id,
        "status_code": status_code,
        "response_body": body,
        "created_at": clock.utcnow_str(),
        "expires_at": _expiry(),
    }
    return {
        "Put": {
            "TableName": _table(),
            "Item": dynamo.serialize(item),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


def complete_item(s: Scope, status_code: int, body: str) -> dict[str, Any]:
    """Completes an in-progress record; fails if someone else completed it first."""
    return {
        "Update": {
            "TableName": _table(),
            "Key": dynamo.serialize({"pk": s.pk}),
            "UpdateExpression": (
                "SET #status = :completed, status_code = :code, response_body = :body"
            ),
            "ConditionExpression": "#status = :in_progress AND request_hash = :hash",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": dynamo.serialize(
                {
                    ":completed": "completed",
                    ":in_progress": "in_progress",
                    ":code": status_code,
                    ":body": body,
                    ":hash": s.request_hash,
                }
            ),
        }
    }


def _lease() -> int:
    return clock.epoch() + get_settings().request_lease_seconds


def begin(
    s: Scope,
    payment_id: str,
    *,
    extra: dict[str, Any] | None = None,
    with_items: list[dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """Write an in-progress record (with `extra` attributes, and in one transaction with
    `with_items` when there are any); None if written, else the record already there. A
    failure of one of `with_items` raises dynamo.TransactionCanceled (item 0 is the record)."""
    item = {
        "pk": s.pk,
        "status": "in_progress",
        "request_hash": s.request_hash,
        "payment_id": payment_id,
        "created_at": clock.utcnow_str(),
        "expires_at": _expiry(),
        "lease_until": _lease(),
        **(extra or {}),
    }
    condition = "attribute_not_exists(pk)"
    try:
        if with_items:
            put = {"TableName": _table(), "Item": dynamo.serialize(item)}
            dynamo.transact_write([{"Put": {**put, "ConditionExpression": condition}}, *with_items])
        else:
            dynamo.put_item(_table(), item, condition)
    except dynamo.ConditionFailed:
        return _existing(s, payment_id, extra, with_items)
    except dynamo.TransactionCanceled as exc:
        if not exc.failed(0):
            raise
        return _existing(s, payment_id, extra, with_items)
    return None


def _existing(
    s: Scope,
    payment_id: str,
    extra: dict[str, Any] | None,
    with_items: list[dict[str, Any]] | None,
) -> dict[str, Any] | None:
    existing = get(s)
    if existing is None:  # expired between the two calls: the key is free again
        return begin(s, payment_id, extra=extra, with_items=with_items)
    return existing


def take_over(s: Scope, record: dict[str, Any]) -> None:
    """Claim an in-progress record whose request can no longer be running; 409 while it may
    still be, or when another retry claimed it first."""
    busy = IdempotencyInProgressError("a request with this Idempotency-Key is in progress")
    if int(record.get("lease_until", 0)) > clock.epoch():
        raise busy
    try:
        dynamo.update_item(
            _table(),
            {"pk": s.pk},
            "SET lease_until = :lease",
            {
                ":lease": _lease(),
                ":old": int(record.get("lease_until", 0)),
                ":in_progress": "in_progress",
            },
            condition="#status = :in_progress AND lease_until = :old",
            names={"#status": "status"},
        )
    except dynamo.ConditionFailed as exc:
        raise busy from exc


def release(s: Scope) -> None:
    """End this request's lease early (its outcome is unknown): the next retry may resume."""
    with contextlib.suppress(dynamo.ConditionFailed):  # completed meanwhile: nothing to do
        dynamo.update_item(
            _table(),
            {"pk": s.pk},
            "SET lease_until = :zero",
            {":zero": 0, ":in_progress": "in_progress"},
            condition="#status = :in_progress",
            names={"#status": "status"},
        )


def abandon(s: Scope) -> None:
    """Drop this request's in-progress record: it did nothing, so the key is free again."""
    with contextlib.suppress(dynamo.ConditionFailed):  # completed meanwhile: keep it
        dynamo.delete_item(
            _table(),
            {"pk": s.pk},
            "#status = :in_progress",
            values={":in_progress": "in_progress"},
            names={"#status": "status"},
        )


def get(s: Scope) -> dict[str, Any] | None:
    return dynamo.get_item(_table(), {"pk": s.pk})


def check(s: Scope, record: dict[str, Any]) -> Replay | None:
    """The replay of a completed record for the same request; raise for a different request
    with the same key. None means the record is still in progress."""
    if record["request_hash"] != s.request_hash:
        raise IdempotencyKeyReusedError(
            "this Idempotency-Key was already used with a different request"
        )
    if record["status"] == "completed":
        return Replay(status_code=int(record["status_code"]), body=str(record["response_body"]))
    return None


def replay_existing(s: Scope) -> Replay:
    """After losing a race on the record: the winner's response, or 409 if still running."""
    record = get(s)
    replay = check(s, record) if record else None
    if replay is None:
        raise IdempotencyInProgressError("a request with this Idempotency-Key is in progress")
    return replay
