"""The admin operations on webhook endpoints and their deliveries."""

from __future__ import annotations

from datetime import timedelta

from cashew import aws, clock, dynamo, ids
from cashew.errors import ConflictError, NotFoundError
from cashew.webhooks import sealing, settings, signing, store, urls
from cashew.webhooks.models import (
    CreatedEndpoint,
    CreateEndpointRequest,
    DeliveryList,
    DeliveryStatus,
    Endpoint,
    EndpointList,
    RetryAccepted,
    RotatedSecret,
    UpdateEndpointRequest,
)

SECRET_OVERLAP = timedelta(hours=24)


def _found(endpoint_id: str) -> store.StoredEndpoint:
    stored = store.get_endpoint(endpoint_id) if ids.PATTERNS["we"].fullmatch(endpoint_id) else None
    if stored is None:
        raise NotFoundError("no such webhook endpoint")
    return stored


def create(request: CreateEndpointRequest) -> CreatedEndpoint:
    """Checked (422 saying which rule the URL breaks), stored with its secret sealed; the
    secret is in this answer only."""
    urls.resolve(request.url, allow_loopback=settings.get().allow_loopback)
    endpoint_id, now, secret = ids.new_id("we"), clock.utcnow_str(), signing.new_secret()
    endpoint = Endpoint(
        id=endpoint_id, url=request.url, events=request.events,
        description=request.description, status="enabled", created_at=now,
    )  # fmt: skip
    sealed = store.SealedSecret(sealing.seal(secret, endpoint_id), now)
    store.create_endpoint(store.StoredEndpoint(endpoint, (sealed,)))
    return CreatedEndpoint(**endpoint.model_dump(), secret=secret)


def get(endpoint_id: str) -> Endpoint:
    return _found(endpoint_id).endpoint


def list_endpoints(limit: int, cursor: str | None) -> EndpointList:
    found, next_cursor = store.list_endpoints(limit, cursor)
    return EndpointList(
        data=[s.endpoint for s in found], has_more=next_cursor is not None, next_cursor=next_cursor
    )


def update(endpoint_id: str, request: UpdateEndpointRequest) -> Endpoint:
    _found(endpoint_id)
    try:
        stored = store.update_endpoint(
            endpoint_id, events=list(request.events) if request.events else None,
            description=request.description,
            status=request.status,
        )  # fmt: skip
    except dynamo.ConditionFailed as exc:
        raise NotFoundError("no such webhook endpoint") from exc
    return stored.endpoint


def delete(endpoint_id: str) -> None:
    _found(endpoint_id)
    try:
        store.delete_endpoint(endpoint_id)
    except dynamo.ConditionFailed as exc:
        raise NotFoundError("no such webhook endpoint") from exc


def rotate_secret(endpoint_id: str) -> RotatedSecret:
    """A new current secret; the one it replaces keeps signing for 24 h (older ones whose
    overlap is over are dropped)."""
    stored = _found(endpoint_id)
    now = clock.now()
    stamp, until = clock.rfc3339(now), clock.rfc3339(now + SECRET_OVERLAP)
    kept = tuple(
        s if s.expires_at is not None else store.SealedSecret(s.ciphertext, s.created_at, until)
        for s in stored.secrets
        if s.live(stamp)
    )
    secret = signing.new_secret()
    sealed = store.SealedSecret(sealing.seal(secret, endpoint_id), stamp)
    try:
        store.replace_secrets(stored, (sealed, *kept))
    except dynamo.ConditionFailed as exc:
        raise ConflictError("the secret was rotated at the same time; retry") from exc
    return RotatedSecret(secret=secret)


def deliveries(
    endpoint_id: str, status: DeliveryStatus | None, limit: int, cursor: str | None
) -> DeliveryList:
    _found(endpoint_id)
    found, next_cursor = store.list_deliveries(endpoint_id, status, limit, cursor)
    return DeliveryList(
        data=[s.delivery for s in found], has_more=next_cursor is not None, next_cursor=next_cursor
    )


def retry(delivery_id: str) -> RetryAccepted:
    """A failed or pending delivery due again at once (one more attempt); a succeeded one is
    left as it is (sending it again would double a success)."""
    stored = store.get_delivery(delivery_id) if ids.PATTERNS["whd"].fullmatch(delivery_id) else None
    if stored is None:
        raise NotFoundError("no such webhook delivery")
    if stored.delivery.status != "succeeded":
        try:
            stored = store.requeue(stored, clock.utcnow_str())
        except dynamo.ConditionFailed:
            stored = store.get_delivery(delivery_id) or stored  # it succeeded meanwhile
        else:
            enqueue(delivery_id)
    return RetryAccepted(id=delivery_id, status=stored.delivery.status)


def enqueue(delivery_id: str, delay: int = 0) -> None:
    """The delivery on the sending queue (one message, one delivery), `delay` seconds on."""
    aws.sqs().send_message(
        QueueUrl=settings.get().deliveries_queue_url,
        MessageBody=f'{{"delivery_id":"{delivery_id}"}}',
        DelaySeconds=max(0, min(900, delay)),
    )
