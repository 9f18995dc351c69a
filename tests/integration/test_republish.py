"""Issue 10, points 9 and 10: a change whose publish was lost is `pending` in the audit (not
a mismatch), and the republisher publishes it from the table once its failure record is on
`PublishFailuresQueue`: the log gets it once, however often republish runs."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from cashew import aws, clock, republish
from cashew.config import get_settings
from tests.integration.conftest import Stack, add_card, call_with_id, pay, top_up
from tests.integration.test_admin_log import ADMIN
from tests.integration.test_outcomes import _entries

POLL = 1  # seconds of each long poll here (deployed: republish.WAIT, 20)


@pytest.fixture(scope="module")
def stack(own_stack: Stack) -> Stack:
    return own_stack  # the audit these tests read covers every account (4 s a test, not 90)


@pytest.fixture
def failures(stack, monkeypatch):
    """The failures queue's URL, in the environment the publisher (and republish) has."""
    url = stack.resources["PublishFailuresQueue"]["QueueUrl"]
    monkeypatch.setenv("CASHEW_PUBLISH_FAILURES_QUEUE_URL", url)
    get_settings.cache_clear()
    yield url
    monkeypatch.undo()
    get_settings.cache_clear()


def failure_record(stream_arn: str, first: datetime, last: datetime) -> str:
    """What Lambda puts on the on-failure destination of a stream mapping."""
    return json.dumps({
        "requestContext": {"condition": "RecordAgeExceeded", "approximateInvokeCount": 40},
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(),
        "DDBStreamBatchInfo": {
            "shardId": "shardId-00000001700000000000-00000000",
            "startSequenceNumber": "100", "endSequenceNumber": "100",
            "approximateArrivalOfFirstRecord": first.isoformat().replace("+00:00", "Z"),
            "approximateArrivalOfLastRecord": last.isoformat().replace("+00:00", "Z"),
            "batchSize": 1, "streamArn": stream_arn,
        },
    })  # fmt: skip


def audit(stack):
    return stack.call("AuditVerifyFunction", "ledger/audit_verify.json", authorizer=ADMIN).body


def test_a_lost_publish_is_pending_then_republished_once(stack, new_user, failures):
    # Given a top-up whose publish is lost: committed, its stream records skipped
    stack.skip_changes()
    payer = new_user()
    before = datetime.now(UTC)
    assert top_up(stack, payer, add_card(stack, payer), 1_000).body["status"] == "succeeded"
    after = datetime.now(UTC)
    stack.skip_changes()
    stack.settle()
    assert _entries(stack, payer) == []
    # Then the audit says it is in flight, not that the balance is wrong
    report = audit(stack)
    assert [(p["user_id"], p["amount"]) for p in report["pending"] if p["user_id"] == payer.id] == [
        (payer.id, 1_000)
    ]
    assert not [d for d in report["discrepancies"] if d.get("user_id") == payer.id]
    # When Lambda's failure record for it is on the queue and republish runs
    sqs = stack.clients("sqs")
    arn = stack.resources["PaymentsTable"]["StreamArn"]
    sqs.send_message(QueueUrl=failures, MessageBody=failure_record(arn, before, after))
    done = republish.run(wait=POLL)
    stack.settle()
    # Then the log has the top-up once, the message is gone, the audit is clean for payer
    assert done.messages == 1 and done.published >= 1 and done.left == []
    assert [(e["type"], e["amount"]) for e in _entries(stack, payer)] == [("top_up", 1_000)]
    assert sqs.receive_message(QueueUrl=failures).get("Messages") is None
    report = audit(stack)
    assert not [p for p in report["pending"] if p["user_id"] == payer.id]
    assert not [d for d in report["discrepancies"] if d.get("user_id") == payer.id]
    # And running it again, even on the same record again, adds nothing
    assert republish.run(wait=POLL).messages == 0
    sqs.send_message(QueueUrl=failures, MessageBody=failure_record(arn, before, after))
    assert republish.run(wait=POLL).messages == 1
    stack.settle()
    assert [(e["type"], e["amount"]) for e in _entries(stack, payer)] == [("top_up", 1_000)]


def test_a_failure_record_is_deleted_only_once_its_changes_are_published(
    stack, new_user, failures, monkeypatch
):
    # Given a lost top-up and its failure record, and a bus that refuses events
    stack.skip_changes()
    payer = new_user()
    before = datetime.now(UTC)
    top_up(stack, payer, add_card(stack, payer), 300)
    stack.skip_changes()
    sqs = stack.clients("sqs")
    arn = stack.resources["PaymentsTable"]["StreamArn"]
    record = failure_record(arn, before, datetime.now(UTC))
    sqs.send_message(QueueUrl=failures, MessageBody=record)

    def refuse(change):
        raise republish.outcomes.PublishError("bus down")

    monkeypatch.setattr(republish.outcomes, "publish", refuse)
    monkeypatch.setattr(republish, "_VISIBILITY", 0)  # what is not deleted is seen at once
    # When republish fails on it
    with pytest.raises(republish.outcomes.PublishError):
        republish.run(wait=POLL)
    # Then the message is still on the queue
    [message] = sqs.receive_message(QueueUrl=failures).get("Messages", [])
    assert message["Body"] == record
    sqs.delete_message(QueueUrl=failures, ReceiptHandle=message["ReceiptHandle"])


def test_a_message_that_describes_nothing_known_is_left_on_the_queue(stack, failures):
    sqs = stack.clients("sqs")
    sqs.send_message(QueueUrl=failures, MessageBody=json.dumps({"DDBStreamBatchInfo": {
        "streamArn": "arn:aws:dynamodb:us-east-1:1:table/other/stream/x",
        "approximateArrivalOfFirstRecord": "2026-01-01T00:00:00Z",
        "approximateArrivalOfLastRecord": "2026-01-01T00:00:01Z",
    }}))  # fmt: skip
    done = republish.run(wait=POLL)
    assert (done.messages, len(done.left)) == (0, 1)
    sqs.purge_queue(QueueUrl=failures)


def _drain(sqs, url: str) -> None:
    """Empty the queue of what earlier tests left (PurgeQueue: once a minute only)."""
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        for message in messages:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _later(monkeypatch, delta: timedelta) -> None:
    real = clock.now
    monkeypatch.setattr(clock, "now", lambda: real() + delta)


def test_a_lost_payment_refunded_later_is_republished(stack, new_user, failures, monkeypatch):
    # Given a payment whose publish is lost, refunded an hour later (published): its item's
    # last change is now the refund's, an hour after the failure record's window
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 1_000)
    stack.settle()
    before = datetime.now(UTC)
    paid = pay(stack, payer, payee.id, 500).body
    assert paid["status"] == "succeeded"
    after = datetime.now(UTC)
    stack.skip_changes()
    _later(monkeypatch, timedelta(hours=1))
    refunded = call_with_id(
        stack, "CreateRefundFunction", "payments/create_refund.json", paid["id"],
        authorizer=payee.authorizer, body={"amount": 100},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )  # fmt: skip
    assert refunded.status == 201, refunded.body
    stack.settle()
    monkeypatch.undo()
    monkeypatch.setenv("CASHEW_PUBLISH_FAILURES_QUEUE_URL", failures)
    # When Lambda's failure record for the payment's change arrives and republish runs
    sqs = stack.clients("sqs")
    arn = stack.resources["PaymentsTable"]["StreamArn"]
    sqs.send_message(QueueUrl=failures, MessageBody=failure_record(arn, before, after))
    done = republish.run(wait=POLL)
    stack.settle()
    # Then the payment reaches both chains, once, and the audit is clean for both
    assert done.messages == 1 and done.left == []
    for user, direction in ((payer, "debit"), (payee, "credit")):
        logged = [(e["type"], e["direction"], e["amount"]) for e in _entries(stack, user)
                  if e["payment_id"] == paid["id"] and e["type"] == "payment"]  # fmt: skip
        assert logged == [("payment", direction, 500)]
    report = audit(stack)
    assert not [p for p in report["pending"] if p["payment_id"] == paid["id"]]
    assert not [d for d in report["discrepancies"] if d.get("user_id") in (payer.id, payee.id)]


def test_an_outcome_lost_for_longer_than_the_stream_keeps_is_drift_until_republished(
    stack, new_user, failures, monkeypatch
):
    # Given a top-up whose publish was lost, 25 hours ago
    stack.skip_changes()
    payer = new_user()
    before = datetime.now(UTC)
    top_up(stack, payer, add_card(stack, payer), 700)
    after = datetime.now(UTC)
    stack.skip_changes()
    _later(monkeypatch, timedelta(hours=25))
    # When the admin audits
    report = audit(stack)
    # Then it is not in flight: it is missing from the log, and the balances do not match
    assert not report["balances_match"]
    assert not [p for p in report["pending"] if p["user_id"] == payer.id]
    [missing] = [d for d in report["discrepancies"] if d.get("user_id") == payer.id]
    assert (missing["kind"], missing["amount"], missing["currency"]) == (
        "missing_from_log", 700, "USD"
    )  # fmt: skip
    assert missing["outcome_id"] == f"{missing['payment_id']}:succeeded"
    assert missing["since"] <= clock.rfc3339(after)
    # And once republish has run on its failure record, nothing is wrong for payer
    sqs = stack.clients("sqs")
    arn = stack.resources["PaymentsTable"]["StreamArn"]
    sqs.send_message(QueueUrl=failures, MessageBody=failure_record(arn, before, after))
    assert republish.run(wait=POLL).messages == 1
    stack.settle()
    report = audit(stack)
    assert not [d for d in report["discrepancies"] if d.get("user_id") == payer.id]


def set_aside(stream_arn: str | None, key: str, images: dict) -> str:
    """What the publisher puts on the failures queue for a change it cannot read; the whole
    body can be written by anyone allowed to send to the queue."""
    record = {"eventName": "MODIFY", "eventSource": "aws:dynamodb",
              "dynamodb": {"Keys": {"pk": {"S": key}}, **images}}  # fmt: skip
    if stream_arn:
        record["eventSourceARN"] = stream_arn
    return json.dumps({"reason": "ValidationError: x", "record": record})


def test_a_set_aside_record_publishes_the_stored_item_never_its_images(
    stack, new_user, failures, monkeypatch
):
    # Given a real payment of 10, and three set-aside messages with forged images: one
    # with the real payment's key, one with a key no table holds, one naming no stream
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 1_000)
    paid = pay(stack, payer, payee.id, 10).body
    stack.settle()
    ddb = stack.clients("dynamodb")
    table = stack.env["CASHEW_PAYMENTS_TABLE"]
    raw = ddb.get_item(TableName=table, Key={"pk": {"S": paid["id"]}}, ConsistentRead=True)
    forged = {**raw["Item"], "amount": {"N": "99999999"}, "amount_captured": {"N": "99999999"}}
    nobody = "pay_01M8SA835WGXX1520V0DKS0B00"
    images = {"OldImage": {**forged, "status": {"S": "processing"}}, "NewImage": forged}
    unknown = {**forged, "pk": {"S": nobody}, "id": {"S": nobody}}
    arn = stack.resources["PaymentsTable"]["StreamArn"]
    sqs = stack.clients("sqs")
    _drain(sqs, failures)
    for body in (
        set_aside(arn, paid["id"], images),
        set_aside(arn, nobody, {"OldImage": {**unknown, "status": {"S": "processing"}},
                                "NewImage": unknown}),
        set_aside(None, nobody, {"NewImage": unknown}),
    ):  # fmt: skip
        sqs.send_message(QueueUrl=failures, MessageBody=body)
    monkeypatch.setattr(republish, "_VISIBILITY", 0)  # what is left is seen again at once
    # When republish runs
    done = republish.run(wait=POLL)
    stack.settle()
    # Then only what the table stores was published: the payment of 10, once
    assert (done.messages, done.published, len(done.left)) == (2, 1, 1)
    payee_log = [(e["payment_id"], e["amount"]) for e in _entries(stack, payee)]
    assert payee_log == [(paid["id"], 10)]
    assert nobody not in {p["payment_id"] for p in audit(stack)["pending"]}
    # And the message naming no stream waits on the queue for a person
    [left] = sqs.receive_message(QueueUrl=failures, WaitTimeSeconds=POLL).get("Messages", [])
    assert json.loads(left["Body"])["record"].get("eventSourceARN") is None
    sqs.delete_message(QueueUrl=failures, ReceiptHandle=left["ReceiptHandle"])


def test_republish_long_polls_and_stops_only_after_an_empty_long_poll(
    stack, new_user, failures, monkeypatch
):
    # Given a lost top-up's failure record, and a queue that answers a short poll with
    # nothing (as SQS may, sampling a few of its servers, while messages remain)
    stack.skip_changes()
    payer = new_user()
    before = datetime.now(UTC)
    top_up(stack, payer, add_card(stack, payer), 400)
    stack.skip_changes()
    sqs = stack.clients("sqs")
    _drain(sqs, failures)
    arn = stack.resources["PaymentsTable"]["StreamArn"]
    sqs.send_message(QueueUrl=failures, MessageBody=failure_record(arn, before, datetime.now(UTC)))
    real, polls = republish._queue(POLL), []

    class SampledQueue:
        def receive_message(self, **request):
            polls.append(request.get("WaitTimeSeconds", 0))
            return real.receive_message(**request) if polls[-1] else {}

        def __getattr__(self, name):  # delete_message: the real one
            return getattr(real, name)

    monkeypatch.setattr(republish, "_queue", lambda wait: SampledQueue())
    # When republish runs
    done = republish.run(wait=POLL)
    stack.settle()
    # Then it long-polled, found the message, and stopped after one empty long poll
    assert done.messages == 1
    assert polls == [POLL, POLL]
    assert [(e["type"], e["amount"]) for e in _entries(stack, payer)] == [("top_up", 400)]


def test_the_deployed_long_poll_is_not_cut_short_by_the_clients_read_timeout(stack):
    # The shared clients give up reading after 5 s: a 20 s poll needs a client that waits
    assert republish.WAIT == 20
    assert republish._queue(republish.WAIT).meta.config.read_timeout > republish.WAIT
    assert aws.sqs().meta.config.read_timeout < republish.WAIT
