"""Issue 10, points 9 and 10: a change whose publish was lost is `pending` in the audit (not
a mismatch), and the republisher publishes it from the table once its failure record is on
`PublishFailuresQueue`: the log gets it once, however often republish runs."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from cashew.config import get_settings
from cashew.payments import republish
from tests.integration.conftest import add_card, top_up
from tests.integration.test_admin_log import ADMIN
from tests.integration.test_outcomes import _entries


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
    done = republish.run()
    stack.settle()
    # Then the log has the top-up once, the message is gone, the audit is clean for payer
    assert done.messages == 1 and done.published >= 1 and done.left == []
    assert [(e["type"], e["amount"]) for e in _entries(stack, payer)] == [("top_up", 1_000)]
    assert sqs.receive_message(QueueUrl=failures).get("Messages") is None
    report = audit(stack)
    assert not [p for p in report["pending"] if p["user_id"] == payer.id]
    assert not [d for d in report["discrepancies"] if d.get("user_id") == payer.id]
    # And running it again, even on the same record again, adds nothing
    assert republish.run().messages == 0
    sqs.send_message(QueueUrl=failures, MessageBody=failure_record(arn, before, after))
    assert republish.run().messages == 1
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
        republish.run()
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
    done = republish.run()
    assert (done.messages, len(done.left)) == (0, 1)
    sqs.purge_queue(QueueUrl=failures)
