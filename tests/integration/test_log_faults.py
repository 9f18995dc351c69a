"""The log consumer under SQS's worst (PROPERTIES 13, 15, 16): every delivery twice, out of
order, with a poison message among them, through the queue and the event source mapping of
template.yaml; and a redrive of the dead-letter queue that adds nothing twice."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from cashew.ledger import service, store
from local.cfn import load_template
from local.consumers import QueuePoller
from local.redrive import redrive, source_of
from tests.integration.test_log_reads import history, new_id

POISON = '{"outcome_id": "pay_x:succeeded", "amount": "a lot"}'


@pytest.fixture
def queues(stack) -> Iterator[dict[str, str]]:
    """A queue and its dead-letter queue of this test's own, configured as the template
    configures the log's (maxReceiveCount), but with no visibility timeout: a failed message
    is received again at once, so maxReceiveCount is reached in seconds. Other tests'
    messages (some still in flight) never get in the way."""
    sqs = stack.clients("sqs")
    policy = load_template()["Resources"]["OutcomesQueue"]["Properties"]["RedrivePolicy"]
    suffix = uuid.uuid4().hex[:8]
    dlq = sqs.create_queue(QueueName=f"faults-dlq-{suffix}")["QueueUrl"]
    dlq_arn = _arn(sqs, dlq)
    source = sqs.create_queue(
        QueueName=f"faults-{suffix}",
        Attributes={
            "VisibilityTimeout": "0",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": policy["maxReceiveCount"]}
            ),
        },
    )["QueueUrl"]
    try:
        yield {"source": source, "source_arn": _arn(sqs, source), "dlq": dlq}
    finally:
        sqs.delete_queue(QueueUrl=source)
        sqs.delete_queue(QueueUrl=dlq)


def _arn(sqs: Any, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return str(attributes["Attributes"]["QueueArn"])


def _drain(sqs: Any, url: str) -> list[str]:
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def _run_until_empty(stack, queues: dict[str, str]) -> None:
    """The template's event source mapping of the log consumer, on the test's queue."""
    [event] = stack.functions["LogConsumerFunction"].sqs_events
    poller = QueuePoller(
        event, queues["source"], queues["source_arn"], stack.invocation, stack.clients
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if poller.poll() == 0:
            attributes = stack.clients("sqs").get_queue_attributes(
                QueueUrl=queues["source"],
                AttributeNames=[
                    "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                ],
            )["Attributes"]  # fmt: skip
            if not any(int(count) for count in attributes.values()):
                return
    raise AssertionError("the queue did not empty within a minute")


def _outcomes(payer: str, payee: str) -> list[dict[str, Any]]:
    payment, card_payment, refund = new_id("pay"), new_id("pay"), new_id("re")
    base = {"currency": "USD", "payer_id": payer, "payee_id": payee, "source": "balance",
            "failure_code": None}  # fmt: skip
    return [
        {**base, "outcome_id": f"{payment}:succeeded", "payment_id": payment, "type": "payment",
         "status": "succeeded", "amount": 400, "occurred_at": "2026-11-30T09:00:00.000Z"},
        {**base, "outcome_id": f"{card_payment}:requires_capture", "payment_id": card_payment,
         "type": "payment", "status": "requires_capture", "amount": 900, "source": "card",
         "occurred_at": "2026-11-30T09:01:00.000Z"},
        {**base, "outcome_id": f"{card_payment}:succeeded", "payment_id": card_payment,
         "type": "payment", "status": "succeeded", "amount": 900, "source": "card",
         "occurred_at": "2026-11-30T09:02:00.000Z"},
        {**base, "outcome_id": f"{refund}:succeeded", "payment_id": payment, "type": "refund",
         "status": "succeeded", "amount": 150, "occurred_at": "2026-11-30T09:03:00.000Z"},
    ]  # fmt: skip


def _send(sqs: Any, url: str, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        entries = [
            {"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])
        ]
        assert not sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed")


def test_twice_reversed_and_poisoned_the_log_holds_each_outcome_once(stack, queues):
    # Given four outcomes of a payer and a payee, delivered as a batch, the same batch again,
    # the batch in reverse order, and a poison message among them
    payer, payee = new_id("usr"), new_id("usr")
    batch = [json.dumps(o) for o in _outcomes(payer, payee)]
    sqs = stack.clients("sqs")
    _send(sqs, queues["source"], [*batch, *batch, POISON, *reversed(batch)])
    # When the template's event source mapping runs the consumer until the queue is empty
    _run_until_empty(stack, queues)
    # Then each user has exactly one entry per outcome that concerns them
    payer_log = history(stack, payer)["data"]
    payee_log = history(stack, payee)["data"]
    assert sorted((e["type"], e["status"], e["amount"]) for e in payer_log) == sorted([
        ("payment", "succeeded", 400), ("payment", "requires_capture", 900),
        ("payment", "succeeded", 900), ("refund", "succeeded", 150),
    ])  # fmt: skip
    assert sorted((e["type"], e["status"], e["amount"]) for e in payee_log) == sorted([
        ("payment", "succeeded", 400), ("payment", "succeeded", 900), ("refund", "succeeded", 150),
    ])  # fmt: skip
    # ... both chains are whole
    for user in (payer, payee):
        assert service.verify_chain(user).valid
        assert [e["seq"] for e in history(stack, user)["data"]] == list(
            range(len(history(stack, user)["data"]), 0, -1)
        )
    # ... and the poison message, only it, is in the dead-letter queue
    assert _drain(sqs, queues["dlq"]) == [POISON]


def test_a_redriven_message_adds_only_what_was_missing(stack, queues, monkeypatch):
    # Given an outcome whose second entry (the payee's) cannot be appended, five times over:
    # its message goes to the dead-letter queue with the payer's entry appended
    payer, payee = new_id("usr"), new_id("usr")
    [outcome, *_] = _outcomes(payer, payee)
    real_append = store.append

    def throttled(entry, **also):
        if entry.user_id == payee:
            raise RuntimeError("ProvisionedThroughputExceededException")
        real_append(entry, **also)

    monkeypatch.setattr(store, "append", throttled)
    sqs = stack.clients("sqs")
    _send(sqs, queues["source"], [json.dumps(outcome)])
    _run_until_empty(stack, queues)
    assert len(history(stack, payer)["data"]) == 1 and history(stack, payee)["data"] == []
    # When the cause is gone and the dead-letter queue is redriven (twice, as a redrive
    # interrupted and run again would)
    monkeypatch.setattr(store, "append", real_append)
    assert source_of(load_template(), "OutcomesDeadLetterQueue") == "OutcomesQueue"
    assert redrive(sqs, queues["dlq"], queues["source"]) == 1
    _send(sqs, queues["source"], [json.dumps(outcome)])  # the copy a crash mid-redrive leaves
    _run_until_empty(stack, queues)
    # Then the payee's entry is there, the payer's is not there twice, nothing is left over
    assert [(e["direction"], e["amount"]) for e in history(stack, payer)["data"]] == [
        ("debit", 400)
    ]
    assert [(e["direction"], e["amount"]) for e in history(stack, payee)["data"]] == [
        ("credit", 400)
    ]
    assert _drain(sqs, queues["dlq"]) == []
