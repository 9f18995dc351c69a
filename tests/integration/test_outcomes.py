"""No lost outcome: the payments table's stream is the outbox (PROPERTIES 13, 14, 37).

Every committed change of a payment or refund reaches the log's queue and the payments bus
through PublishOutcomesFunction, run here by the stream's event source mapping
(local.consumers.StreamPoller) exactly as `make dev` runs it. The tests kill each step that
stands between a commit and the log: the request handler right after its transaction, and
the publisher in the middle of publishing.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any

import pytest

from cashew import aws, dynamo
from cashew.config import get_settings
from local.consumers import StreamPoller
from tests.integration.conftest import Died, add_card, pay, top_up


def _entries(stack, user) -> list[dict[str, Any]]:
    reply = stack.call(
        "ListTransactionsFunction", "ledger/list_transactions.json",
        authorizer=user.authorizer, query={"limit": "100"},
    )  # fmt: skip
    assert reply.status == 200
    return list(reply.body["data"])


def _of(entries: list[dict[str, Any]], payment_id: str) -> list[tuple[str, str, int]]:
    return [(e["type"], e["status"], e["amount"]) for e in entries if e["payment_id"] == payment_id]


@pytest.fixture
def bus_queue(stack):
    """An SQS queue that receives every event of the payments bus (a rule, as a consumer of
    the bus would set one up)."""
    sqs, events = stack.clients("sqs"), stack.clients("events")
    name = f"bus-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    bus = stack.env["CASHEW_EVENT_BUS_NAME"]
    events.put_rule(
        Name=name, EventBusName=bus, EventPattern=json.dumps({"source": ["cashew.payments"]})
    )
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])

    def received() -> list[dict[str, Any]]:
        found = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return found

    yield received
    events.remove_targets(Rule=name, EventBusName=bus, Ids=["q"])
    events.delete_rule(Name=name, EventBusName=bus)
    sqs.delete_queue(QueueUrl=url)


def test_every_outcome_reaches_the_log_and_the_bus_once(stack, new_user, bus_queue):
    # Given a payer with a card and money, and a payee
    stack.skip_changes()
    mark = stack.publisher.skip()
    payer, payee = new_user(), new_user()
    card = add_card(stack, payer)
    declined = add_card(stack, payer, "4000000000000002")
    bus_queue()
    topped = top_up(stack, payer, card, 5_000).body
    # When they pay by balance and card, authorise and capture part, authorise and cancel,
    # get declined, and the payee refunds part of a payment
    paid = pay(stack, payer, payee.id, 700).body
    by_card = {"type": "card", "payment_method_id": card}
    authorised = pay(stack, payer, payee.id, 900, source=by_card, capture=False).body
    captured = stack.call(
        "CapturePaymentFunction", "payments/capture_payment.json", authorizer=payee.authorizer,
        path={"id": authorised["id"]}, body={"amount": 600},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )  # fmt: skip
    assert captured.status == 200
    to_cancel = pay(stack, payer, payee.id, 300, source=by_card, capture=False).body
    canceled = stack.call(
        "CancelPaymentFunction", "payments/cancel_payment.json", authorizer=payer.authorizer,
        path={"id": to_cancel["id"]}, body={}, headers={"Idempotency-Key": str(uuid.uuid4())},
    )  # fmt: skip
    assert canceled.status == 200
    failed = pay(stack, payer, payee.id, 100, source={"type": "card",
        "payment_method_id": declined}).body  # fmt: skip
    assert failed["status"] == "failed"
    refund = stack.call(
        "CreateRefundFunction", "payments/create_refund.json", authorizer=payee.authorizer,
        path={"id": paid["id"]}, body={"amount": 200},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )  # fmt: skip
    assert refund.status == 201
    # ... and the background publishes, twice over (a redelivered stream changes nothing)
    stack.settle()
    stack.publisher.rewind(mark)
    stack.settle()

    # Then each outcome is in the payer's log once
    log = _entries(stack, payer)
    assert _of(log, topped["id"]) == [("top_up", "succeeded", 5_000)]
    assert _of(log, paid["id"]) == [("refund", "succeeded", 200), ("payment", "succeeded", 700)]
    assert _of(log, authorised["id"]) == [
        ("payment", "succeeded", 600), ("payment", "requires_capture", 900),
    ]  # fmt: skip
    assert ("payment", "canceled", 300) in _of(log, to_cancel["id"])
    assert _of(log, failed["id"]) == [("payment", "failed", 100)]
    # ... and the bus carried one event per decided outcome, with the id to deduplicate on
    events = [e for e in bus_queue() if e["detail"].get("payer_id", payer.id) == payer.id]
    seen = {(e["detail-type"], e["detail"]["outcome_id"]) for e in events}
    assert {
        ("payment.succeeded", f"{topped['id']}:succeeded"),
        ("payment.succeeded", f"{paid['id']}:succeeded"),
        ("payment.captured", f"{authorised['id']}:succeeded"),
        ("payment.canceled", f"{to_cancel['id']}:canceled"),
        ("payment.failed", f"{failed['id']}:failed"),
        ("refund.succeeded", f"{refund.body['id']}:succeeded"),
    } <= seen
    assert all(e["source"] == "cashew.payments" for e in events)
    captured_event = next(e for e in events if e["detail-type"] == "payment.captured")
    assert captured_event["detail"]["amount_captured"] == 600
    assert "fired_rules" not in captured_event["detail"]
    assert "charge_id" not in captured_event["detail"]


def test_a_payment_function_that_dies_right_after_commit_loses_no_outcome(
    stack, new_user, monkeypatch
):
    # Given a payer with money, and a payment function that dies the moment its
    # transaction has committed
    stack.skip_changes()
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 1_000)
    stack.settle()

    commit = dynamo.Transaction.write_retrying

    def commit_then_die(tx):
        commit(tx)
        raise Died

    monkeypatch.setattr(dynamo.Transaction, "write_retrying", commit_then_die)
    key = str(uuid.uuid4())
    # When the payer pays
    with pytest.raises(Died):
        pay(stack, payer, payee.id, 300, key)
    monkeypatch.undo()
    # Then the money moved, and once the background ran, the log has the payment for both
    stack.settle()
    [debit] = [e for e in _entries(stack, payer) if e["type"] == "payment"]
    [credit] = _entries(stack, payee)
    assert (debit["direction"], debit["amount"]) == ("debit", 300)
    assert (credit["direction"], credit["payment_id"]) == ("credit", debit["payment_id"])
    # ... and the client's retry replays the payment that was made
    again = pay(stack, payer, payee.id, 300, key)
    assert again.status == 201 and again.body["id"] == debit["payment_id"]


def test_a_publisher_that_dies_mid_publish_is_delivered_again(stack, new_user, monkeypatch):
    # Given a committed payment, and a publisher whose first two runs die after the log's
    # queue took the outcome but before the bus did
    stack.skip_changes()
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 1_000)
    stack.settle()
    paid = pay(stack, payer, payee.id, 400).body
    assert paid["status"] == "succeeded", paid
    events = aws.events()
    real_put = events.put_events
    deaths = iter([True, True])

    def put_or_die(**kwargs):
        if next(deaths, False):
            raise Died
        return real_put(**kwargs)

    monkeypatch.setattr(events, "put_events", put_or_die)
    # When the stream's mapping runs the publisher until it succeeds
    runs = 0
    while stack.publisher.step():
        runs += 1
    # Then it ran three times, and the outcome reached the log once
    assert runs >= 3
    stack.settle()
    assert _of(_entries(stack, payer), paid["id"]) == [("payment", "succeeded", 400)]
    assert _of(_entries(stack, payee), paid["id"]) == [("payment", "succeeded", 400)]


def test_a_queue_that_refuses_the_outcome_fails_only_that_record(stack, new_user, monkeypatch):
    # Given two committed payments, and a queue that refuses the first entry it is sent
    stack.skip_changes()
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 1_000)
    stack.settle()
    first, second = (pay(stack, payer, payee.id, n).body for n in (100, 200))
    sqs = aws.sqs()
    real_send = sqs.send_message_batch
    refusals = iter([True])
    batches = []

    def flaky_send(**kwargs):
        batches.append(len(kwargs["Entries"]))
        if next(refusals, False):
            refused, *rest = kwargs["Entries"]
            answer = real_send(**{**kwargs, "Entries": rest}) if rest else {"Successful": []}
            failure = {"Id": refused["Id"], "SenderFault": False, "Code": "InternalError"}
            return {**answer, "Failed": [failure]}
        return real_send(**kwargs)

    monkeypatch.setattr(sqs, "send_message_batch", flaky_send)
    # When the publisher runs
    stack.settle()
    # Then both payments are in the log, once each, the refused one from its redelivery
    log = _entries(stack, payer)
    assert _of(log, first["id"]) == [("payment", "succeeded", 100)]
    assert _of(log, second["id"]) == [("payment", "succeeded", 200)]
    assert len(batches) >= 2


def test_the_publisher_sends_ten_changes_per_request(stack, new_user, monkeypatch):
    # Given 23 committed top-ups, and counted queue and bus requests
    stack.skip_changes()
    payer = new_user()
    card = add_card(stack, payer)
    stack.settle()
    for _ in range(23):
        top_up(stack, payer, card, 10)
    sqs, bus = aws.sqs(), aws.events()
    sizes: dict[str, list[int]] = {"sqs": [], "bus": []}
    real_send, real_put = sqs.send_message_batch, bus.put_events

    def send(**kwargs):
        sizes["sqs"].append(len(kwargs["Entries"]))
        return real_send(**kwargs)

    def put(**kwargs):
        sizes["bus"].append(len(kwargs["Entries"]))
        return real_put(**kwargs)

    monkeypatch.setattr(sqs, "send_message_batch", send)
    monkeypatch.setattr(bus, "put_events", put)
    # When the publisher runs over them
    stack.settle()
    # Then every top-up is in the log once, and no request carried more than 10 (nor were
    # they sent one by one)
    assert len([e for e in _entries(stack, payer) if e["type"] == "top_up"]) == 23
    assert sum(sizes["sqs"]) >= 23 and max(sizes["sqs"]) == 10
    assert max(sizes["bus"]) == 10 and len(sizes["sqs"]) < 23


def test_a_change_the_publisher_gives_up_on_is_described_on_the_failure_queue(stack, new_user):
    # Given a stream mapping allowed two retries, whose function always fails
    stack.skip_changes()
    mark = stack.publisher.skip()
    event = stack.publisher.event
    failures_url = stack.resources["PublishFailuresQueue"]["QueueUrl"]
    failing = StreamPoller(
        replace(event, maximum_retry_attempts=2),
        stack.resources["PaymentsTable"]["StreamArn"],
        lambda function_id, _: stack.invocation(function_id, {"Records": "not a list"}),
        stack.clients,
        failures_url,
    )
    failing.rewind(mark)  # starts where the stack's publisher is
    payer = new_user()
    top_up(stack, payer, add_card(stack, payer), 1_000)
    # When it runs until it gives up
    for _ in range(3):
        assert failing.step() == 1
    assert failing.step() == 0
    # Then the failure queue describes the change it skipped, as Lambda does
    sqs = stack.clients("sqs")
    [message] = sqs.receive_message(QueueUrl=failures_url).get("Messages", [])
    sqs.delete_message(QueueUrl=failures_url, ReceiptHandle=message["ReceiptHandle"])
    described = json.loads(message["Body"])
    assert described["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert described["DDBStreamBatchInfo"]["batchSize"] == 1
    # ... while the stack's own publisher still publishes it
    stack.settle()
    [entry] = _entries(stack, payer)
    assert (entry["type"], entry["amount"]) == ("top_up", 1_000)


def test_a_change_that_cannot_be_read_is_set_aside_and_holds_nothing_up(
    stack, new_user, monkeypatch
):
    # Given the publisher's failures queue, and a payment item written by hand with almost
    # none of its fields, committed before a real top-up
    stack.skip_changes()
    failures_url = stack.resources["PublishFailuresQueue"]["QueueUrl"]
    monkeypatch.setenv("CASHEW_PUBLISH_FAILURES_QUEUE_URL", failures_url)
    get_settings.cache_clear()
    broken = "pay_01J00000000000000000BROKEN"
    stack.clients("dynamodb").put_item(
        TableName=stack.env["CASHEW_PAYMENTS_TABLE"],
        Item={"pk": {"S": broken}, "status": {"S": "succeeded"}},
    )
    payer = new_user()
    top_up(stack, payer, add_card(stack, payer), 700)
    # When the background runs
    stack.settle()
    # Then the top-up reached the log, and the broken change waits on the failures queue
    [entry] = _entries(stack, payer)
    assert (entry["type"], entry["amount"]) == ("top_up", 700)
    sqs = stack.clients("sqs")
    [message] = sqs.receive_message(QueueUrl=failures_url).get("Messages", [])
    sqs.delete_message(QueueUrl=failures_url, ReceiptHandle=message["ReceiptHandle"])
    set_aside = json.loads(message["Body"])
    assert set_aside["record"]["dynamodb"]["NewImage"]["pk"] == {"S": broken}
    assert set_aside["reason"].startswith("ValidationError")
    monkeypatch.undo()
    get_settings.cache_clear()


def test_an_unreadable_change_that_cannot_be_set_aside_fails_from_itself_on(
    stack, new_user, monkeypatch
):
    # Given two committed top-ups' changes around one that cannot be read, and a failures
    # queue that refuses it
    from botocore.exceptions import ClientError

    from cashew import outcomes

    stack.skip_changes()
    payer = new_user()
    card = add_card(stack, payer)
    first, last = (top_up(stack, payer, card, n).body["id"] for n in (100, 200))
    table = stack.env["CASHEW_PAYMENTS_TABLE"]
    dynamodb = stack.clients("dynamodb")

    def record(item: dict[str, Any], sequence: str) -> dict[str, Any]:
        return {"eventName": "INSERT", "eventSource": "aws:dynamodb",
                "dynamodb": {"NewImage": item, "SequenceNumber": sequence}}  # fmt: skip

    def stored(payment_id: str) -> dict[str, Any]:
        return dynamodb.get_item(TableName=table, Key={"pk": {"S": payment_id}})["Item"]

    broken = {"pk": {"S": "pay_01J00000000000000000BROKEN"}, "status": {"S": "succeeded"}}
    records = [record(stored(first), "100"), record(broken, "200"), record(stored(last), "300")]

    def refuse(record: dict[str, Any], error: Exception) -> None:
        raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "SendMessage")

    monkeypatch.setattr(outcomes, "set_aside", refuse)
    sqs = aws.sqs()
    real_send = sqs.send_message_batch
    sent: list[str] = []

    def send(**kwargs):
        sent.extend(json.loads(e["MessageBody"])["payment_id"] for e in kwargs["Entries"])
        return real_send(**kwargs)

    monkeypatch.setattr(sqs, "send_message_batch", send)
    # When the publisher gets the three
    event = {"Records": records}
    answer = stack.invoke("PublishOutcomesFunction", event)
    # Then the change before the broken one is published, and the batch fails from the broken
    # one on (Lambda delivers it and the one after it again)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "200"}]}
    assert sent == [first]


def test_a_refused_entry_fails_its_own_record_only(stack, new_user, monkeypatch):
    # Given two committed top-ups' changes, and a queue that refuses the second's entry
    stack.skip_changes()
    payer = new_user()
    card = add_card(stack, payer)
    first, second = (top_up(stack, payer, card, n).body["id"] for n in (100, 200))
    table = stack.env["CASHEW_PAYMENTS_TABLE"]
    dynamodb = stack.clients("dynamodb")
    records = [
        {"eventName": "INSERT", "eventSource": "aws:dynamodb", "dynamodb": {
            "NewImage": dynamodb.get_item(TableName=table, Key={"pk": {"S": pid}})["Item"],
            "SequenceNumber": sequence}}
        for pid, sequence in ((first, "100"), (second, "200"))
    ]  # fmt: skip
    sqs, bus = aws.sqs(), aws.events()
    real_send, real_put = sqs.send_message_batch, bus.put_events
    events: list[str] = []

    def send(**kwargs):
        refused, kept = [], []
        for entry in kwargs["Entries"]:
            is_second = json.loads(entry["MessageBody"])["payment_id"] == second
            (refused if is_second else kept).append(entry)
        answer = real_send(**{**kwargs, "Entries": kept})
        failures = [{"Id": e["Id"], "SenderFault": False, "Code": "InternalError"} for e in refused]
        return {**answer, "Failed": failures}

    def put(**kwargs):
        events.extend(json.loads(e["Detail"])["id"] for e in kwargs["Entries"])
        return real_put(**kwargs)

    monkeypatch.setattr(sqs, "send_message_batch", send)
    monkeypatch.setattr(bus, "put_events", put)
    # When the publisher gets both
    answer = stack.invoke("PublishOutcomesFunction", {"Records": records})
    # Then only the second's record fails, and only the first's event went to the bus
    assert answer == {"batchItemFailures": [{"itemIdentifier": "200"}]}
    assert events == [first]
