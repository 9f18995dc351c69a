"""Issue 12, "done when" 2 (PROPERTIES 38, 40, 42): real outcomes of a top-up, two payments
and a refund reach both notification queues through the template's rule; each queue's
messages are then delivered twice, out of order and to two concurrent consumers, and the one
webhook receiver fails its first two attempts. Exactly one email per outcome and recipient,
one successful delivery per event and endpoint, and gapless sequences."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from moto.ses.models import ses_backends

from cashew.webhooks import settings as webhook_settings
from local.cfn import ACCOUNT_ID, REGION
from local.consumers import sqs_event, succeeded
from tests.integration.conftest import (
    Stack,
    User,
    add_card,
    call_with_id,
    pay,
    take_messages,
    top_up,
)
from tests.support.receiver import Receiver


@pytest.fixture(autouse=True)
def _env(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The consumers' own variables: the email claims table (no queue URL: delivered by hand),
    loopback allowed and retries after a second, as the local stack runs them."""
    from cashew.config import get_settings

    monkeypatch.setenv("CASHEW_NOTIFICATIONS_TABLE", stack.resources["NotificationsTable"]["Ref"])
    monkeypatch.delenv("CASHEW_EMAIL_QUEUE_URL", raising=False)
    monkeypatch.setenv("CASHEW_WEBHOOK_ALLOW_LOOPBACK", "true")
    monkeypatch.setenv("CASHEW_WEBHOOK_RETRY_SCHEDULE", "1,1,1,1")
    monkeypatch.setattr("cashew.webhooks.dispatch._due_in", lambda *_: 0)  # no waiting
    get_settings.cache_clear()
    webhook_settings.get.cache_clear()
    yield
    get_settings.cache_clear()
    webhook_settings.get.cache_clear()


def _deliver(stack: Stack, function_id: str, queue_id: str, messages: list[dict[str, Any]]) -> None:
    event = sqs_event(messages, stack.resources[queue_id]["Arn"])
    for record in event["Records"]:
        record["attributes"]["ApproximateReceiveCount"] = "1"
        record["receiptHandle"] = "gone"  # deleted already: no visibility change is asked
    invocation = stack.invocation(function_id, event)
    assert invocation.ok and invocation.payload == {"batchItemFailures": []}, invocation


def _concurrently(*work: Callable[[], None]) -> None:
    errors: list[BaseException] = []

    def run(step: Callable[[], None]) -> None:
        try:
            step()
        except BaseException as exc:  # re-raised below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(step,)) for step in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def _send_until_idle(stack: Stack, deadline_seconds: float = 60) -> None:
    """Lambda's poller on WebhookDeliveriesQueue: every attempt, retries included."""
    sqs, url = stack.clients("sqs"), stack.resources["WebhookDeliveriesQueue"]["Ref"]
    arn, idle_since = stack.resources["WebhookDeliveriesQueue"]["Arn"], time.monotonic()
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline and time.monotonic() - idle_since < 3:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages")
        if not messages:
            time.sleep(0.2)  # a retry re-queued with a delay becomes visible later
            continue
        idle_since = time.monotonic()
        invocation = stack.invocation("SendWebhookDeliveriesFunction", sqs_event(messages, arn))
        for message in succeeded(messages, invocation, report_failures=True):
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _refund(stack: Stack, payee: User, payment_id: str, amount: int) -> str:
    reply = call_with_id(
        stack, "CreateRefundFunction", "payments/create_refund.json", payment_id,
        authorizer=payee.authorizer, body={"amount": amount},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )  # fmt: skip
    assert reply.status == 201, reply.body
    return str(reply.body["id"])


def test_duplicated_reordered_outcomes_and_a_failing_receiver_notify_each_once(
    stack: Stack, new_user: Callable[..., User], new_admin: Callable[[], User]
) -> None:
    # Given an endpoint for every event on a loopback receiver that fails its first two
    # attempts, and nothing else on the notification queues
    stack.skip_changes()
    for queue in ("EmailQueue", "WebhookEventsQueue", "WebhookDeliveriesQueue"):
        take_messages(stack, queue)
    receiver = Receiver(fail_first=2).start()
    try:
        admin = new_admin()
        created = stack.call(
            "CreateWebhookEndpointFunction", "webhooks/create_endpoint.json",
            body={"url": receiver.url, "events": ["*"]}, authorizer=admin.authorizer,
        )  # fmt: skip
        assert created.status == 201, created.body
        endpoint = created.body["id"]
        # ... and the outcomes of a card top-up, a balance and a card payment, and a refund
        payer, payee = new_user("Fault Payer"), new_user("Fault Payee")
        card = add_card(stack, payer)
        topped = top_up(stack, payer, card, 5_000)
        by_balance = pay(stack, payer, payee.id, 2_500)
        by_card = pay(
            stack, payer, payee.id, 1_000, source={"type": "card", "payment_method_id": card}
        )
        assert {r.status for r in (topped, by_balance, by_card)} == {201}
        refund = _refund(stack, payee, by_balance.body["id"], 500)
        stack.settle()
        emails, hooks = (
            take_messages(stack, "EmailQueue"),
            take_messages(stack, "WebhookEventsQueue"),
        )
        events = {json.loads(m["Body"])["id"] for m in emails}
        assert len(emails) == 4 and {json.loads(m["Body"])["id"] for m in hooks} == events
        # When each queue's messages arrive twice over, reversed, at two consumers at once
        since = len(ses_backends[ACCOUNT_ID][REGION].sent_messages)
        for function_id, queue, messages in (
            ("SendEmailsFunction", "EmailQueue", emails),
            ("RouteWebhookEventsFunction", "WebhookEventsQueue", hooks),
        ):
            twice = messages + list(reversed(messages))
            half = len(twice) // 2
            _concurrently(
                lambda f=function_id, q=queue, m=twice[:half]: _deliver(stack, f, q, m),
                lambda f=function_id, q=queue, m=twice[half:][::-1]: _deliver(stack, f, q, m),
            )
        _send_until_idle(stack)
        # Then each recipient has exactly one email of each outcome of theirs
        sent = ses_backends[ACCOUNT_ID][REGION].sent_messages[since:]
        ids = [topped.body["id"], by_balance.body["id"], by_card.body["id"]]

        def outcome_of(raw: str) -> str:
            return refund if refund in raw else next(i for i in ids if i in raw)

        got = Counter(
            (address, outcome_of(message.raw_data))
            for message in sent
            for address in set(message.destinations)  # a RawMessage names its To twice
            if address in (payer.email, payee.email)
        )
        expected = {(payer.email, i): 1 for i in [*ids, refund]}
        expected |= {
            (payee.email, i): 1 for i in [by_balance.body["id"], by_card.body["id"], refund]
        }
        assert got == expected
        # And the receiver got each event once with a 2xx, after two failed attempts
        requests = receiver.requests
        ok = [json.loads(r.body) for r in requests[2:]]
        assert len(requests) == len(events) + 2
        assert Counter(r.headers["Cashew-Event-Id"] for r in requests[2:]) == Counter(
            {b["id"]: 1 for b in ok}
        )
        assert len(ok) == len(events)
        assert {b["data"]["object"]["id"] for b in ok} == {*ids, refund}
        # ... numbered 1..n with no gap, as the deliveries list says too
        assert sorted(b["sequence"] for b in ok) == list(range(1, len(events) + 1))
        listed = call_with_id(
            stack, "ListWebhookDeliveriesFunction", "webhooks/list_deliveries.json", endpoint,
            authorizer=admin.authorizer, query={"limit": "100"},
        )  # fmt: skip
        rows = listed.body["data"]
        assert sorted(r["sequence"] for r in rows) == list(range(1, len(events) + 1))
        assert {r["status"] for r in rows} == {"succeeded"}
        assert sum(r["attempts"] for r in rows) == len(events) + 2
    finally:
        receiver.stop()
