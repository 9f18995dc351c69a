"""`make republish` (python -m local.republish) against the running local stack (issue 10,
point 9): a failure record on PublishFailuresQueue is published again from the payments
table and deleted; the log, which already had the outcome, gets nothing twice."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from local.aws import clients
from local.cfn import physical_name
from tests.e2e.conftest import REPO, add_card, top_up, wait_for_entries


def republish(aws_url: str) -> str:
    """`make republish`: the Makefile's PYTHONPATH, none of this process's stack variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CASHEW_", "AWS_"))}
    env["PYTHONPATH"] = f"{REPO / 'layers/shared/python'}{os.pathsep}{REPO}"
    done = subprocess.run(
        [sys.executable, "-m", "local.republish", "--endpoint", aws_url],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_make_republish_publishes_what_the_failures_queue_describes_once(stack, new_user):
    # Given a top-up in the log, and a failure record whose window holds it
    user = new_user()
    before = datetime.now(UTC) - timedelta(seconds=1)
    paid = top_up(stack, user, add_card(stack, user), 1_234).json()
    wait_for_entries(stack, user.token, payment_id=paid["id"])
    aws = clients(stack.aws_url)
    sqs = aws("sqs")
    url = sqs.get_queue_url(QueueName=physical_name("PublishFailuresQueue"))["QueueUrl"]
    table = aws("dynamodb").describe_table(TableName=physical_name("PaymentsTable"))["Table"]
    record = {
        "requestContext": {"condition": "RecordAgeExceeded", "approximateInvokeCount": 1},
        "DDBStreamBatchInfo": {
            "shardId": "shardId-1", "startSequenceNumber": "1", "endSequenceNumber": "2",
            "approximateArrivalOfFirstRecord": before.isoformat(),
            "approximateArrivalOfLastRecord": datetime.now(UTC).isoformat(),
            "batchSize": 2, "streamArn": table["LatestStreamArn"],
        },
    }  # fmt: skip
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))
    # When make republish runs, twice
    first, second = republish(stack.aws_url), republish(stack.aws_url)
    # Then the message was handled once and the log holds the top-up once
    assert "from 1 failure message(s); 0 message(s) left" in first, first
    assert "republished 0 change(s) from 0 failure message(s)" in second, second
    assert sqs.receive_message(QueueUrl=url).get("Messages") is None
    entries = wait_for_entries(stack, user.token, payment_id=paid["id"])
    assert [(e["type"], e["amount"]) for e in entries] == [("top_up", 1_234)]
