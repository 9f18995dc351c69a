"""Webhooks to services in `make bench`: the admin endpoints and the dispatcher.

1. Operations (AWS calls, cold and warm, as every other operation of `bench.run`): the eight
   admin endpoints; `route_webhook_event`, one bus event of `payment.succeeded` routed by the
   fan-out function to the one endpoint subscribed to it (the others registered here
   subscribe to `dispute.lost` only); `send_webhook`, one delivery sent by the sender to a
   receiver on loopback that answers 200.
2. Throughput: `--webhook-deliveries` events (default 200) routed, then their deliveries sent
   by one sender instance in batches of the template's BatchSize (10) to the loopback
   receiver: deliveries per second, and AWS calls per delivery routed and per delivery sent
   (the queue's own receive and delete calls are Lambda's poller's and are not counted).
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench.harness import (
    Account,
    CallCounter,
    Driver,
    HarnessError,
    LocalStack,
    Request,
    _batches,
    _delete,
)
from cashew import clock
from cashew.webhooks import settings
from local.consumers import sqs_event
from tests.support.receiver import Receiver

BATCH = 10  # the sender's and the fan-out's BatchSize
SUBSCRIBED = "payment.succeeded"  # the operations' endpoint's one event type
THROUGHPUT = "refund.succeeded"  # the throughput run's endpoint's (the other gets none)


@contextmanager
def loopback_receiver() -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 answering 200, and the functions allowed to reach loopback
    there (as the local stack allows them; a deployed stack never does)."""
    os.environ["CASHEW_WEBHOOK_ALLOW_LOOPBACK"] = "true"
    settings.get.cache_clear()
    receiver = Receiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()
        os.environ.pop("CASHEW_WEBHOOK_ALLOW_LOOPBACK", None)
        settings.get.cache_clear()


def bus_event(kind: str = SUBSCRIBED) -> dict[str, Any]:
    """An EventBridge event as the payments bus delivers it, of a payment of its own."""
    payment = f"pay_{uuid.uuid4().hex[:26].upper()}"
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": kind,
        "source": "cashew.payments", "time": clock.utcnow_str()[:19] + "Z",
        "detail": {"id": payment, "type": "payment", "status": "succeeded", "amount": 100,
                   "currency": "USD", "updated_at": clock.utcnow_str(),
                   "outcome_id": f"{payment}:succeeded"},
    }  # fmt: skip


def _records(stack: LocalStack, queue_id: str, bodies: list[str]) -> dict[str, Any]:
    messages = [
        {"MessageId": str(uuid.uuid4()), "ReceiptHandle": "bench", "Body": body, "MD5OfBody": ""}
        for body in bodies
    ]
    return sqs_event(messages, str(stack.resources[queue_id]["Arn"]))


def _no_failures(result: Any) -> Any:
    if not isinstance(result, dict) or result.get("batchItemFailures") != []:
        raise HarnessError(f"the webhook function failed items: {result}")
    return result


def route_request(stack: LocalStack, count: int = 1, kind: str = SUBSCRIBED) -> Request:
    bodies = [json.dumps(bus_event(kind)) for _ in range(count)]
    event = _records(stack, "WebhookEventsQueue", bodies)
    return Request("RouteWebhookEventsFunction", event, _no_failures)


def _take_deliveries(stack: LocalStack, want: int, timeout: float = 10) -> list[dict[str, Any]]:
    """`want` messages of WebhookDeliveriesQueue (deleted: the bench invokes the sender)."""
    sqs, url = stack.clients("sqs"), str(stack.resources["WebhookDeliveriesQueue"]["Ref"])
    taken: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(taken) < want:
        if time.monotonic() > deadline:
            raise HarnessError(f"{len(taken)} of {want} deliveries on WebhookDeliveriesQueue")
        wanted = min(BATCH, want - len(taken))
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=wanted).get("Messages", [])
        _delete(sqs, url, batch)
        taken += batch
    return taken


def _drain(stack: LocalStack) -> None:
    """Delete every message waiting on WebhookDeliveriesQueue."""
    sqs, url = stack.clients("sqs"), str(stack.resources["WebhookDeliveriesQueue"]["Ref"])
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=BATCH).get("Messages"):
        _delete(sqs, url, batch)


def send_request(stack: LocalStack, messages: list[dict[str, Any]]) -> Request:
    bodies = [str(message["Body"]) for message in messages]
    event = _records(stack, "WebhookDeliveriesQueue", bodies)
    return Request("SendWebhookDeliveriesFunction", event, _no_failures)


def describe_deliveries(driver: Driver, admin: Account, endpoint_id: str) -> str:
    """How many of the endpoint's deliveries are in each (status, attempts, last error)."""
    counts: Counter[tuple[str, int, str | None]] = Counter()
    query = {"limit": "100"}
    while True:
        page = driver.send(
            driver.api_request(
                "ListWebhookDeliveriesFunction", 200, caller=admin,
                path={"id": endpoint_id}, query=query,
            )
        )  # fmt: skip
        counts.update((d["status"], d["attempts"], d["last_error"]) for d in page["data"])
        if not page["has_more"]:
            break
        query = {"limit": "100", "cursor": page["next_cursor"]}
    return "the endpoint's deliveries (status, attempts, last error): " + ", ".join(
        f"{key}: {n}" for key, n in counts.most_common()
    )


def operations(
    driver: Driver, admin: Account, receiver: Receiver
) -> list[tuple[str, Callable[[], Request]]]:
    """(name, prepare) of every webhook operation; `receiver` gets the deliveries."""
    stack = driver.stack
    if not isinstance(stack, LocalStack):
        raise HarnessError("the webhook operations need the local stack's queues")
    subscribed = driver.send(
        driver.api_request(
            "CreateWebhookEndpointFunction", 201, caller=admin,
            body={"url": receiver.url, "events": [SUBSCRIBED]},
        )
    )  # fmt: skip

    def registered() -> str:
        body = {"url": receiver.url, "events": ["dispute.lost"], "description": "bench"}
        reply = driver.send(
            driver.api_request("CreateWebhookEndpointFunction", 201, caller=admin, body=body)
        )
        return str(reply["id"])

    def on_endpoint(function_id: str, status: int, **kw: Any) -> Callable[[], Request]:
        return lambda: driver.api_request(
            function_id, status, caller=admin, path={"id": registered()}, **kw
        )

    def delivery() -> str:
        driver.send(route_request(stack))
        [message] = _take_deliveries(stack, 1)
        driver.send(send_request(stack, [message]))
        return str(json.loads(message["Body"])["delivery_id"])

    def send() -> Request:
        driver.send(route_request(stack))
        return send_request(stack, _take_deliveries(stack, 1))

    def retry() -> Request:
        return driver.api_request(
            "RetryWebhookDeliveryFunction", 202, caller=admin, path={"id": delivery()}
        )

    deliveries_of = {"id": subscribed["id"]}
    return [
        ("create_webhook_endpoint", lambda: driver.api_request(
            "CreateWebhookEndpointFunction", 201, caller=admin,
            body={"url": receiver.url, "events": ["dispute.lost"]})),
        ("list_webhook_endpoints", lambda: driver.api_request(
            "ListWebhookEndpointsFunction", 200, caller=admin, query={"limit": "20"})),
        ("get_webhook_endpoint", on_endpoint("GetWebhookEndpointFunction", 200)),
        ("update_webhook_endpoint", on_endpoint(
            "UpdateWebhookEndpointFunction", 200, body={"description": "renamed"})),
        ("rotate_webhook_secret", on_endpoint("RotateWebhookSecretFunction", 200, body={})),
        ("delete_webhook_endpoint", on_endpoint("DeleteWebhookEndpointFunction", 204)),
        ("route_webhook_event", lambda: route_request(stack)),
        ("send_webhook", send),
        ("list_webhook_deliveries", lambda: driver.api_request(
            "ListWebhookDeliveriesFunction", 200, caller=admin, path=deliveries_of,
            query={"limit": "20"})),
        ("retry_webhook_delivery", retry),
    ]  # fmt: skip


def delivery_throughput(
    stack: LocalStack,
    counter: CallCounter,
    receiver: Receiver,
    deliveries: int,
    progress: Callable[[str], None],
    *,
    describe: Callable[[], str] = lambda: "",
) -> dict[str, Any]:
    """Route `deliveries` events to the one endpoint subscribed to their type (registered by
    the caller for THROUGHPUT, on `receiver`), then send them all. `describe` says what the
    endpoint's deliveries are when the receiver did not get them all."""
    progress(f"webhooks: {deliveries} events routed, then their deliveries sent")
    # The operations' routings left their deliveries' messages on the queue: taken with
    # these, they would stand for as many of the run's own, which would never be sent
    _drain(stack)
    counter.install()
    with counter.window() as routing:
        started = time.perf_counter()
        for start in range(0, deliveries, BATCH):
            request = route_request(stack, min(BATCH, deliveries - start), THROUGHPUT)
            request.complete(stack.invoke(request.function_id, request.event))
        route_seconds = time.perf_counter() - started
    messages = _take_deliveries(stack, deliveries, timeout=60)
    before = len(receiver.requests)
    with counter.window() as sending:
        started = time.perf_counter()
        for batch in _batches(messages):
            request = send_request(stack, batch)
            request.complete(stack.invoke(request.function_id, request.event))
        send_seconds = time.perf_counter() - started
    counter.uninstall()
    received = len(receiver.requests) - before
    if received != deliveries:
        raise HarnessError(f"the receiver got {received} of {deliveries} deliveries; {describe()}")
    return {
        "deliveries": deliveries,
        "route_seconds": round(route_seconds, 2),
        "events_routed_per_second": round(deliveries / route_seconds, 1),
        "aws_calls_per_event_routed": round(len(routing) / deliveries, 2),
        "send_seconds": round(send_seconds, 2),
        "deliveries_per_second": round(deliveries / send_seconds, 1),
        "aws_calls_per_delivery_sent": round(len(sending) / deliveries, 2),
    }
