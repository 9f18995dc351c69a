"""What one million balance payments cost at list prices, from the bench's measured figures.

Every part of the path one balance payment takes is counted, from what `make bench`
measured (AWS calls and DynamoDB units per operation, handler time without I/O, log bytes):

1. the API request (API Gateway REST) and its access log line;
2. the authorizer, invoked on every request (`ReauthorizeEvery: 0`: a revoked session
   must fail on its next request);
3. CreatePaymentFunction: one TransactWriteItems moving the money, one read of the payer's
   attempts;
4. the payments table's stream -> PublishOutcomesFunction (streams read by Lambda cost
   nothing; batches of 25 records at load): the outcome to the log's queue and the event
   to the bus, 10 per request;
5. the log's queue -> LogConsumerFunction (batches of 10): the entries of payer and payee;
6. the bus's event -> the email queue -> SendEmailsFunction, and -> the webhook routing
   queue -> RouteWebhookEventsFunction (each a queue send by EventBridge, and the
   consumer's receive and delete, per batch of 10);
7. CloudWatch Logs: the bytes each function logged in the bench, plus Lambda's own lines.

SES's emails (two per payment) are reported beside the total, not in it: the issue's target
counts the processing path, and an email costs $0.10 per thousand whatever the backend.

Lambda's billed duration is modelled: the handler's time without I/O (measured here on one
full core) scaled by 1769 / MemorySize (a function's share of a vCPU), plus a typical
in-region latency per AWS call (LATENCY_MS, not measured: the embedded endpoint is local).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

# us-east-1 list prices (USD). DynamoDB on-demand as repriced in November 2024.
PRICES = {
    "api_gateway_rest_per_million": 3.50,
    "lambda_gb_second_arm": 0.0000133334,
    "lambda_requests_per_million": 0.20,
    "dynamodb_write_unit_per_million": 0.625,
    "dynamodb_read_unit_per_million": 0.125,
    "sqs_requests_per_million": 0.40,
    "eventbridge_events_per_million": 1.00,
    "logs_ingested_per_gb": 0.50,
    "ses_per_thousand_emails": 0.10,
}
# Typical in-region round trips of one call (ms); the embedded endpoint cannot say.
LATENCY_MS = {
    "DynamoDB.TransactWriteItems": 12.0,
    "DynamoDB": 5.0,
    "SQS": 8.0,
    "EventBridge": 12.0,
    "SESv2": 40.0,
    "KMS": 8.0,
    "SecretsManager": 15.0,
    "S3": 25.0,  # a small object put or got (the audit job's checkpoints)
}
FULL_CPU_MB = 1769
PLATFORM_LOG_BYTES = 350  # Lambda's own START/END/REPORT lines per invocation
ACCESS_LOG_BYTES = 450  # one API Gateway access log line (the template's format)
STREAM_BATCH = 25  # the publisher's BatchSize
QUEUE_BATCH = 10  # the queue consumers' BatchSize
SEND_BATCH = 10  # SendMessageBatch and PutEvents entries per request
# A batch of 25 records is sent as 10, 10 and 5: each request carries 25 / 3 on average.
PUBLISH_SHARED_BY = STREAM_BATCH / math.ceil(STREAM_BATCH / SEND_BATCH)
EMAILS_PER_PAYMENT = 2


@dataclass(frozen=True)
class Step:
    """One function's part of the path: `share` invocations per payment, each doing the
    measured operation `operation` `per_invocation` times (a batch)."""

    operation: str
    share: float  # invocations per payment
    per_invocation: int = 1
    calls_shared_by: float = 1  # records whose AWS calls one call carries (batched sends)
    queue_fed_by_bus: bool = False  # its queue's messages are sent by EventBridge's rule
    at_once: int = 1  # records of a batch handled at the same time (each in a thread)

    def one_at_a_time(self) -> Step:
        """The same step with a batch's records handled one after another."""
        return replace(self, at_once=1)


def path() -> list[Step]:
    return [
        Step("authorizer", 1.0),
        Step("balance_payment", 1.0),
        Step("publish_outcome", 1 / STREAM_BATCH, STREAM_BATCH, PUBLISH_SHARED_BY),
        Step("log_consume", 1 / QUEUE_BATCH, QUEUE_BATCH),
        Step(
            "send_emails", 1 / QUEUE_BATCH, QUEUE_BATCH, queue_fed_by_bus=True, at_once=QUEUE_BATCH
        ),
    ]


def webhook_path() -> list[Step]:
    """What each webhook endpoint subscribed to the payment's event adds: routing the event
    to its delivery, and sending it (one delivery per invocation)."""
    return [
        Step("route_webhook_event", 1 / QUEUE_BATCH, QUEUE_BATCH, queue_fed_by_bus=True),
        Step("send_webhook", 1.0),
    ]


def latency(call: str) -> float:
    """The modelled round trip of one call (`DynamoDB.GetItem`), in ms."""
    return LATENCY_MS.get(call, LATENCY_MS[call.split(".", maxsplit=1)[0]])


def billed_ms(results: dict[str, Any], step: Step) -> float:
    """One invocation's modelled duration in Lambda (ms): `per_invocation` operations, their
    CPU one after another (the function's share of a vCPU), their waits on AWS `at_once` at
    a time (threads wait together; a batch of 10 at once waits as long as one record)."""
    operation = step.operation
    memory = results["memory_mb"][results["operation_function"][operation]]
    cpu = results["handler_ms_without_io"][operation] * FULL_CPU_MB / min(memory, FULL_CPU_MB)
    io = sum(latency(call) for call in results["aws_call_names"][operation]["warm"])
    waits = math.ceil(step.per_invocation / step.at_once)
    return float(step.per_invocation * cpu + waits * io / step.calls_shared_by)


def per_payment(results: dict[str, Any]) -> dict[str, Any]:
    """Dollars per million balance payments, by part (and what a webhook endpoint adds)."""
    cost, units = _steps(results, path())
    cost["api_gateway"] = PRICES["api_gateway_rest_per_million"]
    cost["eventbridge"] = PRICES["eventbridge_events_per_million"]  # one event per payment
    cost["logs"] += ACCESS_LOG_BYTES * 1_000_000 / 1024**3 * PRICES["logs_ingested_per_gb"]
    webhook, webhook_units = _steps(results, webhook_path())
    total = round(sum(cost.values()), 2)
    return {
        "total_usd": total,
        "parts_usd": {part: round(value, 2) for part, value in sorted(cost.items())},
        "dynamodb_units_per_payment": units,
        "per_subscribed_webhook_endpoint_usd": round(sum(webhook.values()), 2),
        "per_subscribed_webhook_endpoint_units": webhook_units,
        "ses_emails_usd_not_in_total": round(
            EMAILS_PER_PAYMENT * PRICES["ses_per_thousand_emails"] * 1000, 2
        ),
        "goal_usd": 10.0,
        "prices": PRICES,
        "latency_ms_assumed": LATENCY_MS,
    }


def _steps(
    results: dict[str, Any], steps: list[Step]
) -> tuple[defaultdict[str, float], dict[str, float]]:
    """Lambda, DynamoDB, logs and the consumers' queue requests of `steps`, per million
    payments; and their DynamoDB units per payment."""
    cost: defaultdict[str, float] = defaultdict(float)
    million = 1_000_000
    logs_bytes: float = 0.0
    sqs_requests: float = 0.0
    write_units: float = 0.0
    read_units: float = 0.0
    for step in steps:
        operation = step.operation
        function = results["operation_function"][operation]
        memory = results["memory_mb"][function]
        runs = step.share * step.per_invocation  # operations per payment
        duration = math.ceil(billed_ms(results, step))
        gb_s = step.share * duration / 1000 * memory / 1024
        cost["lambda"] += gb_s * PRICES["lambda_gb_second_arm"] * million
        cost["lambda"] += step.share * PRICES["lambda_requests_per_million"]
        units = results["dynamodb_units"][operation]
        writes = units["write_units"] + units["index_write_units"]
        write_units += runs * writes
        read_units += runs * units["read_units"]
        cost["dynamodb_writes"] += runs * writes * PRICES["dynamodb_write_unit_per_million"]
        cost["dynamodb_reads"] += (
            runs * units["read_units"] * PRICES["dynamodb_read_unit_per_million"]
        )
        logs_bytes += runs * results["log_bytes"][operation] + step.share * PLATFORM_LOG_BYTES
        if step.queue_fed_by_bus:
            sqs_requests += 1  # the rule's send of the event to the consumer's queue
        if operation in ("log_consume", "send_emails", "route_webhook_event", "send_webhook"):
            sqs_requests += 2 * step.share  # the poller's receive and delete, per batch
        sqs_requests += (
            runs
            * sum(
                1
                for call in results["aws_call_names"][operation]["warm"]
                if call.startswith("SQS.")
            )
            / step.calls_shared_by
        )
    cost["sqs"] = sqs_requests * PRICES["sqs_requests_per_million"]
    cost["logs"] = logs_bytes * million / 1024**3 * PRICES["logs_ingested_per_gb"]
    return cost, {"write_units": round(write_units, 2), "read_units": round(read_units, 2)}


def print_report(model: dict[str, Any]) -> None:
    units = model["dynamodb_units_per_payment"]
    print(
        f"\nCost of 1M balance payments at list prices: ${model['total_usd']}"
        f" (goal <= ${model['goal_usd']}); DynamoDB {units['write_units']} write and"
        f" {units['read_units']} read units per payment"
    )
    for part, usd in model["parts_usd"].items():
        print(f"  {part:<18} ${usd:>7.2f}")
    print(
        f"  (not in the total: SES's two emails, ${model['ses_emails_usd_not_in_total']};"
        f" each webhook endpoint subscribed to the event,"
        f" ${model['per_subscribed_webhook_endpoint_usd']})"
    )
