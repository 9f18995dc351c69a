"""`python -m bench.capacity_model` (make capacity): headroom at a target rate of balance
payments against every quota and partition limit on the path, from bench/results.json.

It reads what `make bench` measured (AWS calls, DynamoDB units per table, modelled Lambda
durations, the publisher's records/s) and the template's parameter defaults, and prints, for
each limit, the load the target puts on it, the limit, and the load as a share of it. A share
above 100 % is a limit the design does not hold at the target: docs/CAPACITY.md says what
is built and what is planned for each. The quotas are AWS's defaults in us-east-1 (most can
be raised on request; partition limits cannot).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import cost
from cashew.ledger import totals
from local.cfn import load_template

RESULTS = Path(__file__).resolve().parent / "results.json"

# AWS default quotas (us-east-1) and hard limits.
API_GATEWAY_ACCOUNT_RPS = 10_000  # per account and region, raisable
LAMBDA_ACCOUNT_CONCURRENCY = 1_000  # raisable
LAMBDA_SCALING_PER_10S = 1_000  # new execution environments per function every 10 s
DYNAMODB_TABLE_WRU_PER_S = 40_000  # on-demand table maximum, raisable
DYNAMODB_PARTITION_WRU_PER_S = 1_000  # per partition (a key's item collection), hard
DYNAMODB_ITEM_TRANSACTIONS_PER_S = 250  # transactions on one item before conflicts (measured
# by the review quoted in issue 16; a transaction holds its items while it commits)
EVENTBRIDGE_PUT_EVENTS_RPS = 10_000  # PutEvents requests per second, raisable
EVENTBRIDGE_INVOCATIONS_PER_S = 18_750  # rule target invocations per second, raisable
SQS_IN_FLIGHT = 120_000  # messages received and not deleted, per standard queue
STREAM_SHARD_WRITES_PER_S = 1_000  # writes per stream shard (as per table partition)
SES_SEND_RATE = 14  # emails per second: the usual start of an account out of SES's sandbox,
# raised by request (a sandboxed account sends 1 a second, to verified addresses only)


@dataclass(frozen=True)
class Limit:
    name: str
    load: float
    limit: float
    unit: str
    fix: str  # what holds it (built) or would (planned)

    @property
    def share(self) -> float:
        return self.load / self.limit


def _defaults(template: dict[str, Any]) -> dict[str, Any]:
    return {name: p.get("Default") for name, p in template["Parameters"].items()}


def _table_of(physical: str, resources: dict[str, str]) -> str:
    return resources.get(physical, physical)


def limits(
    results: dict[str, Any],
    rate: float,
    template: dict[str, Any],
    overrides: dict[str, str] | None = None,
) -> list[Limit]:
    params = {**_defaults(template), **(overrides or {})}
    physical = results.get("table_names", {})
    rows: list[Limit] = []

    rows.append(Limit("API Gateway: account requests/s", rate, API_GATEWAY_ACCOUNT_RPS, "req/s",
                      "quota increase (raisable)"))  # fmt: skip
    rows.append(Limit("API Gateway: stage method throttle", rate,
                      float(params["ApiThrottleRateLimit"]), "req/s",
                      "parameter ApiThrottleRateLimit"))  # fmt: skip

    # Lambda: concurrency = rate x duration, per function on the path
    concurrency: dict[str, float] = {}
    for step in cost.path():
        function = results["operation_function"][step.operation]
        environments = rate * step.share * cost.billed_ms(results, step) / 1000
        concurrency[function] = concurrency.get(function, 0.0) + environments
    rows.append(Limit("Lambda: CreatePaymentFunction reserved concurrency",
                      concurrency.get("CreatePaymentFunction", 0.0),
                      float(params["PaymentsReservedConcurrency"]), "environments",
                      "parameter PaymentsReservedConcurrency"))  # fmt: skip
    for function, cap in _queue_caps(template, params).items():
        if function in concurrency:
            rows.append(Limit(f"Lambda: {function} maximum concurrency", concurrency[function],
                              cap, "environments", "parameter ConsumerMaxConcurrency"))  # fmt: skip
    rows.append(Limit("Lambda: account concurrency (the path's functions)",
                      sum(concurrency.values()), LAMBDA_ACCOUNT_CONCURRENCY, "environments",
                      "quota increase"))  # fmt: skip
    busiest = max(concurrency, key=concurrency.__getitem__)
    rows.append(Limit(f"Lambda: scaling from cold ({busiest}, per 10 s)", concurrency[busiest],
                      LAMBDA_SCALING_PER_10S, "environments",
                      "ramp over 10 s per 1,000, or provisioned concurrency"))  # fmt: skip

    # DynamoDB: units per table per second, and the hot items
    per_table: dict[str, float] = {}
    for step in cost.path():
        runs = step.share * step.per_invocation
        for table, units in results["dynamodb_units"][step.operation][
            "write_units_by_table"
        ].items():
            name = _table_of(table, physical)
            per_table[name] = per_table.get(name, 0.0) + rate * runs * units
    for name, load in sorted(per_table.items()):
        rows.append(Limit(f"DynamoDB: {name} write units/s", load, DYNAMODB_TABLE_WRU_PER_S,
                          "WRU/s", "table quota increase (raisable)"))  # fmt: skip
    entries_per_payment = results.get("log_consume_per_entry", {}).get("entries_per_batch", 2)
    day_shards = int(params["LogDayShards"])
    rows.append(Limit("DynamoDB: DayIndex partition (a day's entries)",
                      rate * entries_per_payment / day_shards, DYNAMODB_PARTITION_WRU_PER_S,
                      "WRU/s", f"parameter LogDayShards ({day_shards})"))  # fmt: skip
    rows.append(Limit(f"DynamoDB: a day's summary totals item (one of {totals.SHARDS})",
                      rate / totals.SHARDS, DYNAMODB_ITEM_TRANSACTIONS_PER_S, "tx/s",
                      "more shards (cashew.ledger.totals.SHARDS)"))  # fmt: skip
    hot_share = 0.5  # one merchant receiving half of all payments
    payee_shards = int(params["HotPayeeShards"])  # once the payee is named in HotPayees
    rows.append(Limit(f"DynamoDB: a hot payee's credit shard (one of {payee_shards})",
                      rate * hot_share / payee_shards, DYNAMODB_ITEM_TRANSACTIONS_PER_S, "tx/s",
                      f"parameters HotPayees and HotPayeeShards ({payee_shards})"))  # fmt: skip
    chain_ms = _chain_append_ms(results)
    rows.append(Limit("Log: a hot payee's chain appends (one at a time)", rate * hot_share,
                      1000 / chain_ms, "entries/s",
                      "planned: the chain split into sub-chains by design"))  # fmt: skip

    # Streams -> publisher: a batch of 25 records takes the measured CPU per record and the
    # measured calls per record at the assumed latency
    publisher = results.get("publisher", {})
    if publisher:
        per_record_ms = (
            cost.FULL_CPU_MB
            / results["memory_mb"]["PublishOutcomesFunction"]
            * (results["handler_ms_without_io"]["publish_outcome"])
            + publisher["aws_calls_per_record"]["batched"] * cost.LATENCY_MS["SQS"]
        )
        per_batch = 1000 / per_record_ms
        factor = int(params["PublisherParallelizationFactor"])
        shards = max(1, math.ceil(rate / STREAM_SHARD_WRITES_PER_S))
        rows.append(Limit("Streams: publisher records/s (shards x factor x per batch)", rate,
                          shards * factor * per_batch, "records/s",
                          f"batched sends; {shards} shards x factor {factor} x"
                          f" {per_batch:,.0f}/s"))  # fmt: skip

    # EventBridge
    rows.append(Limit("EventBridge: PutEvents requests/s (3 per batch of 25 records)",
                      rate / cost.PUBLISH_SHARED_BY, EVENTBRIDGE_PUT_EVENTS_RPS, "req/s",
                      "batched PutEvents"))  # fmt: skip
    targets = len(_rule_targets(template))
    rows.append(Limit(f"EventBridge: rule target invocations/s ({targets} per event)",
                      rate * targets, EVENTBRIDGE_INVOCATIONS_PER_S, "inv/s",
                      "quota increase (raisable)"))  # fmt: skip

    # SES: every email of every payment (payer and payee), whatever the consumer's speed; a
    # throttled send is refused, released and retried with backoff, so a rate above the quota
    # is a backlog on EmailQueue (and, past 8 receives, the dead-letter queue)
    rows.append(Limit("SES: emails sent per second (account sending rate)",
                      rate * cost.EMAILS_PER_PAYMENT, SES_SEND_RATE, "emails/s",
                      "quota increase (raisable)"))  # fmt: skip

    # SQS: messages in flight on the log's queue while being consumed
    consume_s = cost.billed_ms(results, cost.path()[3]) / 1000
    rows.append(Limit("SQS: the log's queue, messages in flight", rate * consume_s,
                      SQS_IN_FLIGHT, "messages", "standard queue"))  # fmt: skip
    return rows


def _queue_caps(template: dict[str, Any], params: dict[str, Any]) -> dict[str, float]:
    """The maximum concurrency of each function's SQS event source, as the template sets it."""
    caps = {}
    for function, resource in template["Resources"].items():
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            scaling = event.get("Properties", {}).get("ScalingConfig", {})
            cap = scaling.get("MaximumConcurrency")
            if event["Type"] == "SQS" and cap is not None:
                caps[function] = float(params[cap["Ref"]] if isinstance(cap, dict) else cap)
    return caps


def _chain_append_ms(results: dict[str, Any]) -> float:
    """One append to one user's chain: the head's read and the conditional write, at the
    latencies the cost model assumes, plus the consumer's CPU per entry."""
    per_entry_cpu = float(results["handler_ms_without_io"]["log_consume"]) / 2
    return (
        cost.LATENCY_MS["DynamoDB"] + cost.LATENCY_MS["DynamoDB.TransactWriteItems"] + per_entry_cpu
    )


def _rule_targets(template: dict[str, Any]) -> list[Any]:
    return [
        target
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::Events::Rule"
        for target in resource["Properties"].get("Targets", [])
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.capacity_model", description=__doc__)
    parser.add_argument("--rate", type=float, default=10_000, help="payments/s (default 10000)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="PARAMETER=VALUE",
        help="a template parameter's value instead of its default (repeatable)",
    )
    args = parser.parse_args(argv)
    template = load_template()
    overrides = dict(item.split("=", 1) for item in args.set)
    unknown = set(overrides) - set(template["Parameters"])
    if unknown or any("=" not in item for item in args.set):
        print(f"capacity: not template parameters: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if not args.results.exists():
        print(f"capacity: no {args.results}: run make bench first", file=sys.stderr)
        return 2
    results = json.loads(args.results.read_text(encoding="utf-8"))
    rows = limits(results, args.rate, template, overrides)
    given = ", ".join(f"{k}={v}" for k, v in overrides.items()) or "the template's defaults"
    print(f"Headroom at {args.rate:,.0f} balance payments/s (from {args.results.name}; {given})")
    print(f"  {'limit':<62} {'load':>10} {'limit':>10} {'share':>7}  holds by")
    for row in rows:
        flag = "  OVER" if row.share > 1 else ""
        print(
            f"  {row.name:<62} {row.load:>10,.0f} {row.limit:>10,.0f} {row.share:>6.0%}"
            f"  {row.fix}{flag}"
        )
    over = [row.name for row in rows if row.share > 1]
    print(f"\n{len(over)} of {len(rows)} limits are over at this rate")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
