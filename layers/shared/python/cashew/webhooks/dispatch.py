"""The dispatcher: `route` fans each bus event out to the endpoints subscribed to it, one
delivery per event and endpoint, each with the endpoint's next gapless `sequence`; `send`
makes one attempt of one delivery and schedules the next with exponential backoff.

Routing writes the route (once per event and endpoint), the delivery and the endpoint's
counter in one transaction, so a redelivered or concurrent event can neither make a second
delivery nor leave a gap. Sending claims each attempt with a conditional update, so two
senders of one delivery never both send it, and a success is never sent again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from cashew import clock, ids
from cashew.accounts import face as accounts
from cashew.observability import logger, metrics
from cashew.webhooks import endpoints, sealing, settings, signing, store, transport, urls
from cashew.webhooks.models import EVENT_TYPES, Delivery

ROUTE_ATTEMPTS = 20
LEASE_SECONDS = 60  # longer than one attempt (10 s) and its bookkeeping
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


class RouteContention(Exception):
    """The endpoint's counter kept moving under this event; the message is delivered again."""


def _ulid_text(value: int) -> str:
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -5, -5))


def _moment(detail: Mapping[str, Any]) -> str:
    for name in ("updated_at", "resolved_at", "created_at"):
        value = detail.get(name)
        if isinstance(value, str) and clock.RFC3339.fullmatch(value):
            return value
    return "2000-01-01T00:00:00.000Z"


def event_id(outcome_id: str, created_at: str) -> str:
    """`evt_` and a ULID made of the outcome's time and a hash of its id: the same outcome,
    however often the bus delivers it, is always the same event, and ids sort by time."""
    moment = datetime.fromisoformat(created_at.replace("Z", "+00:00"))
    millis = int(moment.timestamp() * 1000) & ((1 << 48) - 1)
    digest = int.from_bytes(hashlib.sha256(outcome_id.encode()).digest()[:10], "big")
    return f"evt_{_ulid_text((millis << 80) | digest)}"


def body_of(event: str, created_at: str, sequence: int, obj: Mapping[str, Any], kind: str) -> str:
    return json.dumps(
        {"id": event, "type": kind, "created_at": created_at, "sequence": sequence,
         "data": {"object": dict(obj)}},
        separators=(",", ":"),
    )  # fmt: skip


def _subscribed(endpoint: store.StoredEndpoint, kind: str) -> bool:
    e = endpoint.endpoint
    return e.status == "enabled" and (e.events == ["*"] or kind in e.events)


def route(envelope: Mapping[str, Any]) -> list[str]:
    """The deliveries an EventBridge event (as its SQS message carries it) became, routed and
    queued for sending; one already routed is queued again if it never got an attempt (the
    sender makes nothing of a duplicate)."""
    kind = str(envelope["detail-type"])
    detail = dict(envelope["detail"])
    if kind not in EVENT_TYPES:
        logger.warning("an event type no endpoint can subscribe to", extra={"type": kind})
        return []
    outcome_id = str(detail.pop("outcome_id"))
    created_at = _moment(detail)
    evt = event_id(outcome_id, created_at)
    queued = []
    for endpoint in store.all_endpoints():
        if _subscribed(endpoint, kind):
            delivery_id = _route_to(endpoint, evt, kind, created_at, detail)
            if delivery_id is not None:
                endpoints.enqueue(delivery_id)
                queued.append(delivery_id)
    return queued


def _route_to(
    endpoint: store.StoredEndpoint, evt: str, kind: str, created_at: str, obj: Mapping[str, Any]
) -> str | None:
    current: store.StoredEndpoint | None = endpoint
    for _ in range(ROUTE_ATTEMPTS):
        if current is None or not _subscribed(current, kind):
            return None  # deleted, disabled or unsubscribed meanwhile
        sequence = current.sequence + 1
        delivery = Delivery(
            id=ids.new_id("whd"), event_id=evt, event_type=kind, sequence=sequence, attempts=0,
            status="pending", last_response_status=None, last_error=None,
            next_attempt_at=clock.utcnow_str(), created_at=clock.utcnow_str(),
        )  # fmt: skip
        stored = store.StoredDelivery(
            delivery, current.endpoint.id, body_of(evt, created_at, sequence, obj, kind)
        )
        try:
            store.route(current, stored)
        except store.AlreadyRouted:
            existing = store.routed(evt, current.endpoint.id)
            found = store.get_delivery(existing) if existing else None
            if found and found.delivery.status == "pending" and found.delivery.attempts == 0:
                return found.delivery.id
            return None
        except store.SequenceMoved:
            current = store.get_endpoint(current.endpoint.id)
            continue
        metrics.add_metric(name="WebhookRouted", unit=MetricUnit.Count, value=1)
        return delivery.id
    raise RouteContention(f"the sequence of {endpoint.endpoint.id} kept moving")


# ---------------------------------------------------------------------------------- send
def _due_in(delivery: Delivery, now: datetime) -> int:
    if delivery.next_attempt_at is None:
        return 0
    due = datetime.fromisoformat(delivery.next_attempt_at.replace("Z", "+00:00"))
    return max(0, int((due - now).total_seconds() + 0.999))


def send(delivery_id: str) -> str:
    """One attempt of the delivery if it is due (what happened, for logs and tests)."""
    stored = store.get_delivery(delivery_id)
    if stored is None or stored.delivery.status != "pending":
        return "done"
    now = clock.now()
    wait = _due_in(stored.delivery, now)
    if wait > 0:  # SQS delays at most 900 s: hop until it is due
        endpoints.enqueue(delivery_id, delay=wait)
        return "waiting"
    endpoint = store.get_endpoint(stored.endpoint_id)
    if endpoint is None or endpoint.endpoint.status != "enabled":
        reason = "endpoint deleted" if endpoint is None else "endpoint disabled"
        store.finish_attempt(
            stored, stored.delivery.attempts, "failed", stored.delivery.last_response_status,
            reason, None,
        )  # fmt: skip
        return "failed"
    if not store.claim_attempt(stored, int(now.timestamp()), LEASE_SECONDS):
        return "claimed elsewhere"
    attempt = stored.delivery.attempts + 1
    status, error = _attempt(endpoint, stored, clock.rfc3339(now))
    if status is not None and 200 <= status < 300:
        store.finish_attempt(stored, attempt, "succeeded", status, None, None)
        if endpoint.failing_since is not None:
            store.clear_failing(endpoint.endpoint.id)
        metrics.add_metric(name="WebhookDelivered", unit=MetricUnit.Count, value=1)
        return "succeeded"
    error = error or f"answered HTTP {status}"
    config = settings.get()
    if attempt >= config.max_attempts:
        store.finish_attempt(stored, attempt, "failed", status, error, None)
        metrics.add_metric(name="WebhookFailed", unit=MetricUnit.Count, value=1)
        outcome = "failed"
    else:
        delay = config.retry_schedule[attempt - 1]
        next_at = clock.rfc3339(now + timedelta(seconds=delay))
        if store.finish_attempt(stored, attempt, "pending", status, error, next_at):
            endpoints.enqueue(delivery_id, delay=delay)
        outcome = "retrying"
    _note_failure(endpoint, now)
    return outcome


def _attempt(
    endpoint: store.StoredEndpoint, stored: store.StoredDelivery, now: str
) -> tuple[int | None, str | None]:
    """The status the endpoint answered, or why there was none."""
    config = settings.get()
    try:
        target = urls.resolve(endpoint.endpoint.url, allow_loopback=config.allow_loopback)
    except urls.UrlRefused as refused:
        return None, refused.detail
    live = [
        sealing.unseal(s.ciphertext, endpoint.endpoint.id) for s in endpoint.secrets if s.live(now)
    ]
    body = stored.body.encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Cashew-Webhooks/1.1",
        "Cashew-Event-Id": stored.delivery.event_id,
        "Cashew-Signature": signing.header(live, clock.epoch(), body),
    }
    try:
        answer = transport.post(target, body, headers)
    except transport.TransportError as exc:
        return None, str(exc)
    return answer.status, None


def _note_failure(endpoint: store.StoredEndpoint, now: datetime) -> None:
    """The endpoint failing since its first failure after a success; past the limit it is
    disabled (by exactly one sender) and the admins are told."""
    since = store.mark_failing(endpoint.endpoint.id, clock.rfc3339(now))
    cutoff = clock.rfc3339(now - timedelta(seconds=settings.get().disable_after))
    if since is None or since > cutoff:
        return
    if store.disable_if_failing_since(endpoint.endpoint.id, cutoff):
        metrics.add_metric(name="WebhookEndpointDisabled", unit=MetricUnit.Count, value=1)
        logger.warning("webhook endpoint disabled", extra={"endpoint_id": endpoint.endpoint.id})
        _tell_admins(endpoint, since)


def _tell_admins(endpoint: store.StoredEndpoint, since: str) -> None:
    from cashew import aws  # noqa: PLC0415

    config = settings.get()
    e = endpoint.endpoint
    subject = "A webhook endpoint was disabled"
    text = (
        f"The webhook endpoint {e.id} ({e.url}) has failed every delivery since {since} and "
        "was disabled. Its failed deliveries are listed under GET /v1/admin/webhook-endpoints/"
        f'{e.id}/deliveries?status=failed; enable it again with PATCH {{"status": '
        '"enabled"} and retry them.'
    )
    for address in accounts.admin_emails():
        aws.sesv2().send_email(
            FromEmailAddress=config.email_from,
            Destination={"ToAddresses": [address]},
            Content={"Simple": {"Subject": {"Data": subject}, "Body": {"Text": {"Data": text}}}},
        )
