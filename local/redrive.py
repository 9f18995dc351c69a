"""Redrive: move every message of a dead-letter queue back to the queue it came from, where
the consumer takes it again. The log deduplicates by outcome, so a message that was partly
appended before it was set aside adds only what is missing, and a message moved twice adds
nothing twice.

Deployed, AWS does the moving:
    aws sqs start-message-move-task --source-arn <OutcomesDeadLetterQueue ARN>
Locally, while `make dev` runs (`make redrive`), this module does the same against the
embedded endpoint:
    python -m local.redrive [--queue OutcomesDeadLetterQueue] [--endpoint URL]

Each batch is sent to the source queue before it is deleted from the dead-letter queue:
a crash in between leaves a copy in both, never in neither.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import Any

from local.cfn import load_template, physical_name

_BATCH = 10


def source_of(template: Mapping[str, Any], dead_letter_queue: str) -> str:
    """The logical id of the queue whose RedrivePolicy targets `dead_letter_queue`."""
    for logical_id, resource in template["Resources"].items():
        policy = resource.get("Properties", {}).get("RedrivePolicy") or {}
        target = policy.get("deadLetterTargetArn", {}).get("Fn::GetAtt", [None])[0]
        if resource["Type"] == "AWS::SQS::Queue" and target == dead_letter_queue:
            return str(logical_id)
    raise LookupError(f"no queue of the template uses {dead_letter_queue} as its dead-letter queue")


def redrive(sqs: Any, dead_letter_url: str, source_url: str) -> int:
    """Move every message (body and attributes); returns how many were moved."""
    moved = 0
    while messages := sqs.receive_message(
        QueueUrl=dead_letter_url,
        MaxNumberOfMessages=_BATCH,
        MessageAttributeNames=["All"],
        VisibilityTimeout=60,
    ).get("Messages"):
        entries = [
            {
                "Id": str(i),
                "MessageBody": message["Body"],
                **(
                    {"MessageAttributes": message["MessageAttributes"]}
                    if message.get("MessageAttributes")
                    else {}
                ),
            }
            for i, message in enumerate(messages)
        ]
        sent = sqs.send_message_batch(QueueUrl=source_url, Entries=entries)
        if sent.get("Failed"):
            raise RuntimeError(f"the source queue refused messages: {sent['Failed']}")
        sqs.delete_message_batch(
            QueueUrl=dead_letter_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": message["ReceiptHandle"]}
                for i, message in enumerate(messages)
            ],
        )
        moved += len(messages)
    return moved


def main(argv: list[str] | None = None) -> int:
    from local import aws  # noqa: PLC0415 - only the command needs the endpoint's clients

    port = int(os.environ.get("CASHEW_AWS_PORT", aws.DEFAULT_PORT))
    parser = argparse.ArgumentParser(prog="python -m local.redrive", description=__doc__)
    parser.add_argument("--queue", default="OutcomesDeadLetterQueue", help="logical id")
    parser.add_argument("--endpoint", default=f"http://127.0.0.1:{port}")
    args = parser.parse_args(argv)
    source = source_of(load_template(), args.queue)
    sqs = aws.clients(args.endpoint)("sqs")
    try:
        dead_letter_url = sqs.get_queue_url(QueueName=physical_name(args.queue))["QueueUrl"]
        source_url = sqs.get_queue_url(QueueName=physical_name(source))["QueueUrl"]
    except Exception as exc:  # noqa: BLE001 - any failure here means: no local stack there
        print(f"cannot reach the queues at {args.endpoint} (is `make dev` running?): {exc}")
        return 1
    moved = redrive(sqs, dead_letter_url, source_url)
    print(f"moved {moved} message(s) from {args.queue} back to {source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
