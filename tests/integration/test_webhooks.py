"""Webhooks to services against moto: admin endpoints, fan-out, sending with retries, and
disabling, through the template's own functions and queues."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest

from cashew import clock
from cashew.webhooks import settings, signing, urls
from local.consumers import sqs_event, succeeded
from tests.integration.conftest import Stack, User, call_with_id
from tests.integration.test_iam_policies import recorder  # noqa: F401 - a fixture
from tests.support.receiver import Receiver


@pytest.fixture
def loopback(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CASHEW_WEBHOOK_ALLOW_LOOPBACK", "true")
    monkeypatch.setenv("CASHEW_WEBHOOK_RETRY_SCHEDULE", "1,1,1")
    settings.get.cache_clear()
    yield
    settings.get.cache_clear()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver().start()
    yield running
    running.stop()


@pytest.fixture
def admin(new_admin: Callable[[], User]) -> User:
    return new_admin()


def _register(stack: Stack, admin: User, url: str, events: list[str] | None = None) -> Any:
    reply = stack.call(
        "CreateWebhookEndpointFunction", "webhooks/create_endpoint.json",
        body={"url": url, "events": events or ["*"]}, authorizer=admin.authorizer,
    )  # fmt: skip
    return reply


def _event(kind: str = "payment.succeeded", payment: str | None = None) -> dict[str, Any]:
    payment = payment or f"pay_{uuid.uuid4().hex[:26].upper()}"
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": kind, "source": "cashew.payments",
        "time": "2026-12-01T10:00:00Z",
        "detail": {"id": payment, "type": "payment", "status": "succeeded", "amount": 2500,
                   "currency": "USD", "updated_at": clock.utcnow_str(),
                   "outcome_id": f"{payment}:succeeded"},
    }  # fmt: skip


def _drain(stack: Stack, function_id: str, queue_id: str, max_rounds: int = 50) -> int:
    """Run the function on its queue until nothing is visible; how many messages it took."""
    sqs, url = stack.clients("sqs"), stack.resources[queue_id]["Ref"]
    arn, taken = stack.resources[queue_id]["Arn"], 0
    for _ in range(max_rounds):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages")
        if not messages:
            return taken
        invocation = stack.invocation(function_id, sqs_event(messages, arn))
        for message in succeeded(messages, invocation, report_failures=True):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            taken += 1
    return taken


def _route(stack: Stack, *events: dict[str, Any]) -> None:
    records = [
        {"messageId": str(uuid.uuid4()), "body": json.dumps(e), "receiptHandle": "r",
         "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
         "eventSourceARN": stack.resources["WebhookEventsQueue"]["Arn"], "awsRegion": "us-east-1"}
        for e in events
    ]  # fmt: skip
    response = stack.invoke("RouteWebhookEventsFunction", {"Records": records})
    assert not response["batchItemFailures"], response


def _deliveries(stack: Stack, admin: User, endpoint: str, **query: str) -> list[dict[str, Any]]:
    reply = call_with_id(
        stack, "ListWebhookDeliveriesFunction", "webhooks/list_deliveries.json", endpoint,
        authorizer=admin.authorizer, query=query or None,
    )  # fmt: skip
    assert reply.status == 200, reply.body
    return list(reply.body["data"])


def test_a_registered_endpoint_gets_each_event_once_signed_with_gapless_sequences(
    stack: Stack, admin: User, loopback: None, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
):
    # Given an endpoint on loopback whose receiver fails its first two attempts
    receiver.fail_first = 2
    created = _register(stack, admin, receiver.url)
    assert created.status == 201, created.body
    assert created.headers["Cache-Control"] == "no-store"
    secret, endpoint = created.body["secret"], created.body["id"]
    assert secret.startswith("whsec_") and len(secret) >= 6 + 43
    _drain(stack, "SendWebhookDeliveriesFunction", "WebhookDeliveriesQueue")
    # When three events arrive, one of them twice and out of order
    first, second, third = _event(), _event(), _event()
    _route(stack, second, first)
    _route(stack, second, third, first)
    monkeypatch.setattr("cashew.webhooks.dispatch._due_in", lambda *_: 0)  # no waiting
    _drain(stack, "SendWebhookDeliveriesFunction", "WebhookDeliveriesQueue")
    # Then each event succeeded once, with sequences 1..3, each signed over its bytes
    delivered = [r for r in receiver.requests[2:]]
    ids = [r.headers["Cashew-Event-Id"] for r in delivered]
    assert len(ids) == len(set(ids)) == 3
    bodies = [json.loads(r.body) for r in delivered]
    assert sorted(b["sequence"] for b in bodies) == [1, 2, 3]
    for request in receiver.requests:
        assert signing.verify(
            secret, request.headers["Cashew-Signature"], request.body, clock.epoch()
        )
        assert request.headers["Content-Type"] == "application/json"
    assert all("outcome_id" not in b["data"]["object"] for b in bodies)
    assert {b["type"] for b in bodies} == {"payment.succeeded"}
    rows = _deliveries(stack, admin, endpoint)
    assert sorted(r["sequence"] for r in rows) == [1, 2, 3]
    assert {r["status"] for r in rows} == {"succeeded"}
    assert sum(r["attempts"] for r in rows) == 5  # two failures, then three successes
    assert _deliveries(stack, admin, endpoint, status="pending") == []


def test_registration_refuses_metadata_private_and_loopback_when_deployed(
    stack: Stack, admin: User, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("CASHEW_WEBHOOK_ALLOW_LOOPBACK", raising=False)
    settings.get.cache_clear()
    monkeypatch.setattr(urls, "resolver", lambda host, port: {
        "metadata.example.com": ["169.254.169.254"], "intranet.example.com": ["10.0.0.7"],
        "public.example.com": ["93.184.216.34"], "localhost": ["127.0.0.1"],
    }[host])  # fmt: skip
    for url in (
        "https://169.254.169.254/latest/meta-data", "https://metadata.example.com/",
        "https://intranet.example.com/", "http://127.0.0.1:8080/", "https://127.0.0.1/",
        "https://localhost/", "https://[::ffff:10.0.0.1]/", "https://100.64.0.1/",
        "http://public.example.com/", "https://user:pw@public.example.com/",
    ):  # fmt: skip
        reply = _register(stack, admin, url)
        assert reply.status == 422, (url, reply.body)
        assert reply.body["errors"][0]["field"] == "url"
    assert _register(stack, admin, "https://public.example.com/hooks").status == 201


def test_a_host_that_turns_private_after_registration_is_never_called(
    stack: Stack, admin: User, monkeypatch: pytest.MonkeyPatch, receiver: Receiver
):
    # Given an endpoint registered while its name resolved to a public address
    monkeypatch.delenv("CASHEW_WEBHOOK_ALLOW_LOOPBACK", raising=False)
    monkeypatch.setenv("CASHEW_WEBHOOK_RETRY_SCHEDULE", "1")
    settings.get.cache_clear()
    answers = {"rebind.example.com": ["93.184.216.34"]}
    monkeypatch.setattr(urls, "resolver", lambda host, port: answers[host])
    port = receiver.server.server_address[1]
    endpoint = _register(stack, admin, f"https://rebind.example.com:{port}/hooks").body["id"]
    _drain(stack, "SendWebhookDeliveriesFunction", "WebhookDeliveriesQueue")
    # When its DNS now answers loopback (where a receiver listens) and an event comes
    answers["rebind.example.com"] = ["127.0.0.1"]
    _route(stack, _event())
    monkeypatch.setattr("cashew.webhooks.dispatch._due_in", lambda *_: 0)
    _drain(stack, "SendWebhookDeliveriesFunction", "WebhookDeliveriesQueue")
    time.sleep(1.2)  # the retry's delay
    _drain(stack, "SendWebhookDeliveriesFunction", "WebhookDeliveriesQueue")
    # Then nothing was sent and the delivery says why
    assert receiver.requests == []
    [row] = _deliveries(stack, admin, endpoint)
    assert row["status"] == "failed" and "public addresses" in row["last_error"]
    settings.get.cache_clear()


def test_an_endpoint_failing_for_a_day_is_disabled_once_and_the_admins_are_emailed(
    stack: Stack, admin: User, loopback: None, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
):
    receiver.fail_first = 1000
    endpoint = _register(stack, admin, receiver.url).body["id"]
    _drain(stack, "SendWebhookDeliveriesFunction", "WebhookDeliveriesQueue")
    monkeypatch.setattr("cashew.webhooks.dispatch._due_in", lambda *_: 0)
    _route(stack, _event())
    _drain(stack, "SendWebhookDeliveriesFunction", "WebhookDeliveriesQueue")
    assert call_with_id(
        stack, "GetWebhookEndpointFunction", "webhooks/get_endpoint.json", endpoint,
        authorizer=admin.authorizer,
    ).body["status"] == "enabled"  # fmt: skip
    # a day later, it still fails everything
    later = clock.now() + timedelta(hours=24, seconds=5)
    monkeypatch.setattr("cashew.webhooks.dispatch.clock.now", lambda: later)
    _route(stack, _event())
    _drain(stack, "SendWebhookDeliveriesFunction", "WebhookDeliveriesQueue")
    got = call_with_id(
        stack, "GetWebhookEndpointFunction", "webhooks/get_endpoint.json", endpoint,
        authorizer=admin.authorizer,
    )  # fmt: skip
    assert got.body["status"] == "disabled"
    sent = stack.clients("ses").list_identities()  # the identity exists; messages in moto's backend
    assert sent["Identities"]
    from moto.backends import get_backend

    messages = [
        m for m in get_backend("ses")["123456789012"]["us-east-1"].sent_messages
        if endpoint in str(getattr(m, "body", "")) or endpoint in str(m.__dict__)
    ]  # fmt: skip
    assert len(messages) >= 1


def test_every_action_of_the_webhook_functions_is_granted(
    stack: Stack, admin: User, loopback: None, receiver: Receiver, recorder: Any,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
):  # fmt: skip
    monkeypatch.setattr("cashew.webhooks.dispatch._due_in", lambda *_: 0)
    receiver.fail_first = 1000
    with recorder.acting_as("CreateWebhookEndpointFunction"):
        endpoint = _register(stack, admin, receiver.url).body["id"]
    with recorder.acting_as("RouteWebhookEventsFunction"):
        _route(stack, _event())
        _route(stack, _event(payment="pay_01JCQ3K2K4M6N8P0Q2R4S6T8V2"))
        _route(stack, _event(payment="pay_01JCQ3K2K4M6N8P0Q2R4S6T8V2"))  # already routed
    later = clock.now() + timedelta(hours=25)
    with recorder.acting_as("SendWebhookDeliveriesFunction"):
        _drain(stack, "SendWebhookDeliveriesFunction", "WebhookDeliveriesQueue")
        monkeypatch.setattr("cashew.webhooks.dispatch.clock.now", lambda: later)
    with recorder.acting_as("RouteWebhookEventsFunction"):
        _route(stack, _event())
    with recorder.acting_as("SendWebhookDeliveriesFunction"):
        _drain(stack, "SendWebhookDeliveriesFunction", "WebhookDeliveriesQueue")
    monkeypatch.undo()
    [delivery, *_] = _deliveries(stack, admin, endpoint)
    calls = {
        "ListWebhookEndpointsFunction": ("webhooks/list_endpoints.json", None),
        "GetWebhookEndpointFunction": ("webhooks/get_endpoint.json", endpoint),
        "UpdateWebhookEndpointFunction": ("webhooks/update_endpoint.json", endpoint),
        "RotateWebhookSecretFunction": ("webhooks/rotate_secret.json", endpoint),
        "ListWebhookDeliveriesFunction": ("webhooks/list_deliveries.json", endpoint),
        "RetryWebhookDeliveryFunction": ("webhooks/retry_delivery.json", delivery["id"]),
        "DeleteWebhookEndpointFunction": ("webhooks/delete_endpoint.json", endpoint),
    }
    for function_id, (sample, resource_id) in calls.items():
        with recorder.acting_as(function_id):
            path = {"path": {"id": resource_id}} if resource_id else {}
            reply = stack.call(function_id, sample, authorizer=admin.authorizer, **path)
            assert reply.status < 300, (function_id, reply.body)
    assert recorder.ungranted() == {}
    assert ("ses:SendEmail", "EmailIdentity") in recorder.used["SendWebhookDeliveriesFunction"]


def test_a_user_who_is_not_an_admin_gets_403_on_every_webhook_path(
    stack: Stack, new_user: Callable[..., User]
):
    user = new_user()
    for function_id in (
        "CreateWebhookEndpointFunction", "ListWebhookEndpointsFunction",
        "GetWebhookEndpointFunction", "UpdateWebhookEndpointFunction",
        "DeleteWebhookEndpointFunction", "RotateWebhookSecretFunction",
        "ListWebhookDeliveriesFunction", "RetryWebhookDeliveryFunction",
    ):  # fmt: skip
        name = function_id.removesuffix("Function")
        sample = {
            "CreateWebhookEndpoint": "create_endpoint", "ListWebhookEndpoints": "list_endpoints",
            "GetWebhookEndpoint": "get_endpoint", "UpdateWebhookEndpoint": "update_endpoint",
            "DeleteWebhookEndpoint": "delete_endpoint", "RotateWebhookSecret": "rotate_secret",
            "ListWebhookDeliveries": "list_deliveries", "RetryWebhookDelivery": "retry_delivery",
        }[name]  # fmt: skip
        reply = stack.call(function_id, f"webhooks/{sample}.json", authorizer=user.authorizer)
        assert reply.status == 403, (function_id, reply.body)
        assert reply.body["code"] == "forbidden"


def test_unknown_ids_are_404_and_unknown_event_types_422(stack: Stack, admin: User):
    for function_id, sample in (
        ("GetWebhookEndpointFunction", "get_endpoint"),
        ("RotateWebhookSecretFunction", "rotate_secret"),
        ("ListWebhookDeliveriesFunction", "list_deliveries"),
        ("RetryWebhookDeliveryFunction", "retry_delivery"),
        ("DeleteWebhookEndpointFunction", "delete_endpoint"),
    ):
        reply = stack.call(function_id, f"webhooks/{sample}.json", authorizer=admin.authorizer)
        assert reply.status == 404, (function_id, reply.body)
    bad = stack.call(
        "CreateWebhookEndpointFunction", "webhooks/create_endpoint.json",
        body={"url": "https://93.184.216.34/", "events": ["payment.exploded"]},
        authorizer=admin.authorizer,
    )  # fmt: skip
    assert bad.status == 422 and bad.body["errors"][0]["field"] == "events.0"


def test_a_rotated_secret_signs_beside_the_new_one_for_a_day(
    stack: Stack, admin: User, loopback: None, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
):
    created = _register(stack, admin, receiver.url).body
    _drain(stack, "SendWebhookDeliveriesFunction", "WebhookDeliveriesQueue")
    rotated = call_with_id(
        stack, "RotateWebhookSecretFunction", "webhooks/rotate_secret.json", created["id"],
        authorizer=admin.authorizer,
    )  # fmt: skip
    assert rotated.status == 200 and rotated.headers["Cache-Control"] == "no-store"
    new = rotated.body["secret"]
    assert new != created["secret"]
    got = call_with_id(
        stack, "GetWebhookEndpointFunction", "webhooks/get_endpoint.json", created["id"],
        authorizer=admin.authorizer,
    )  # fmt: skip
    assert "secret" not in got.body
    _route(stack, _event())
    _drain(stack, "SendWebhookDeliveriesFunction", "WebhookDeliveriesQueue")
    [request] = receiver.requests
    header, now = request.headers["Cashew-Signature"], clock.epoch()
    assert header.count("v1=") == 2
    assert signing.verify(new, header, request.body, now)
    assert signing.verify(created["secret"], header, request.body, now)
    # a day and a bit later only the new one signs
    later = clock.now() + timedelta(hours=24, minutes=1)
    monkeypatch.setattr("cashew.webhooks.dispatch.clock.now", lambda: later)
    _route(stack, _event())
    _drain(stack, "SendWebhookDeliveriesFunction", "WebhookDeliveriesQueue")
    header = receiver.requests[1].headers["Cashew-Signature"]
    assert header.count("v1=") == 1
    assert signing.verify(new, header, receiver.requests[1].body, int(later.timestamp()))
