"""Long admin work off the request path, for `make bench` (issue 16, goal 4).

Over the range `bench.log.csv_export` seeded (100,000 entries over 20 days, written straight
into the log table, so the consumer never counted them):

1. The summary, read from the log (the totals' FROM set after the range), then from the
   running totals (one item per seeded day written with what the consumer would have added
   for those entries, and FROM set before the range): requests to DynamoDB, seconds on moto,
   and the two summaries compared (they must be equal: the bench fails otherwise).
2. A CSV job of the range: StartJobFunction queues it, RunJobFunction runs its message in
   this process (a 900 s budget, as deployed) and writes the file as a multipart upload.
   Reported: rows, parts, the handler's CPU seconds (its thread's: the embedded endpoint
   serves from another), rows per CPU second, and the model for 10 million
   entries: CPU at RunJobFunction's memory (3,008 MB: a full vCPU) plus one DayIndex page of
   ~1 MB (`ENTRIES_PER_PAGE`) at `cost.LATENCY_MS["DynamoDB"]` per request, and the
   invocations it takes at `jobs.MARGIN_MS` short of 900 s each.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench import cost
from bench.harness import CallCounter, HarnessError, LocalStack
from cashew import dynamo
from cashew.config import get_settings
from cashew.ledger import totals
from local.consumers import sqs_event
from local.events import api_event, sample_of

TEN_MILLION = 10_000_000
ENTRIES_PER_PAGE = 2_500  # a DayIndex Query page: 1 MB of ~400-byte entries
TIMEOUT_MS = 900_000


def _seeded_totals(entries: int, first_day: date, days: int) -> dict[str, totals.Totals]:
    """What the consumer would have added for `bench.log.seed`'s entries (each its own
    succeeded USD payment, `1 + n % 99_999` in amount), by day."""
    by_day: dict[str, totals.Totals] = {}
    for n in range(entries):
        day = (first_day + timedelta(days=n % days)).isoformat()
        by_day.setdefault(day, totals.Totals()).add("USD", "payment", "succeeded",
                                                    1 + n % 99_999, None)  # fmt: skip
    return by_day


def _put_totals(table: str, by_day: dict[str, totals.Totals]) -> None:
    for day, sums in by_day.items():
        item: dict[str, Any] = {"pk": f"DAY#{day}#00", "sk": "TOTALS", "outcomes": sums.outcomes}
        for (currency, type_, status), count in sums.counts.items():
            item[f"n|{currency}|{type_}|{status}"] = count
            item[f"a|{currency}|{type_}|{status}"] = sums.amounts[currency, type_, status]
        dynamo.put_item(table, item)


def _summary(stack: LocalStack, admin: dict[str, str], query: dict[str, str],
             counter: CallCounter) -> tuple[dict[str, Any], int, float]:  # fmt: skip
    event = api_event(sample_of(stack.functions["ReportSummaryFunction"]), authorizer=admin,
                      query=query)  # fmt: skip
    with counter.window() as calls:
        started = time.perf_counter()
        answer = stack.invoke("ReportSummaryFunction", event)
        seconds = time.perf_counter() - started
    if answer["statusCode"] != 200:
        raise HarnessError(f"the summary failed: {answer}")
    return json.loads(answer["body"]), len(calls), seconds


@contextlib.contextmanager
def _job_functions_env(stack: LocalStack) -> Iterator[None]:
    """The job functions' own variables (their queue, their bucket), as deployed."""
    saved = dict(os.environ)
    os.environ["CASHEW_JOBS_QUEUE_URL"] = str(stack.resources["JobsQueue"]["Ref"])
    os.environ["CASHEW_REPORTS_BUCKET"] = str(stack.resources["ReportsBucket"]["Ref"])
    get_settings.cache_clear()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        get_settings.cache_clear()


def measure(
    stack: LocalStack,
    admin: dict[str, str],
    seeded: dict[str, Any],
    first_day: date,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    with _job_functions_env(stack):
        return _measure(stack, admin, seeded, first_day, progress)


def _jobs() -> Any:
    """cashew.jobs.service, imported once the stack's environment is set (its logger and
    metrics read their namespace and service at import)."""
    from cashew.jobs import service

    return service


def _measure(
    stack: LocalStack,
    admin: dict[str, str],
    seeded: dict[str, Any],
    first_day: date,
    progress: Callable[[str], None],
) -> dict[str, Any]:
    entries, days = seeded["entries"], seeded["days"]
    last_day = first_day + timedelta(days=days - 1)
    query = {"from": f"{first_day}T00:00:00Z", "to": f"{last_day}T23:59:59.999Z"}
    reports_table = get_settings().reports_table
    start_key = {"pk": "TOTALS", "sk": "FROM"}
    before = dynamo.get_item(reports_table, start_key)
    counter = CallCounter()
    counter.install()
    try:
        progress(f"summary of {entries} entries: from the log, then from the totals")
        dynamo.put_item(reports_table, {**start_key, "day": "9999-01-01"})
        from_log, log_requests, log_s = _summary(stack, admin, query, counter)
        _put_totals(reports_table, _seeded_totals(entries, first_day, days))
        dynamo.put_item(reports_table, {**start_key, "day": totals.ALL_DAYS})
        from_totals, totals_requests, totals_s = _summary(stack, admin, query, counter)
    finally:
        counter.uninstall()
        dynamo.put_item(reports_table, before or {**start_key, "day": totals.ALL_DAYS})
    if from_log != from_totals:
        raise HarnessError(f"the summaries differ: {from_log} against {from_totals}")
    progress(f"csv job of {entries} entries")
    job = _csv_job(stack, admin, query)
    per_row_s = job["cpu_s"] / max(1, job["rows"])
    modelled_s = TEN_MILLION * per_row_s + (
        TEN_MILLION / ENTRIES_PER_PAGE * cost.LATENCY_MS["DynamoDB"] / 1000
    )
    jobs = _jobs()
    budget_s = (TIMEOUT_MS - jobs.MARGIN_MS) / 1000
    return {
        "entries": entries,
        "days": days,
        "summary": {
            "outcomes": from_totals["outcomes"],
            "equal": True,
            "from_log": {"requests": log_requests, "seconds_on_moto": round(log_s, 2)},
            "from_totals": {"requests": totals_requests, "seconds_on_moto": round(totals_s, 3)},
            "requests_ratio": round(totals_requests / log_requests, 4),
            "seconds_ratio": round(totals_s / log_s, 4),
            # 64 items a day, 100 a BatchGetItem; FROM; the disputes' count
            "requests_for_366_days_from_totals": math.ceil(366 * totals.SHARDS / 100) + 2,
        },
        "csv_job": {
            **job,
            "rows_per_cpu_second": round(job["rows"] / job["cpu_s"]),
            "ten_million_entries_modelled_minutes": round(modelled_s / 60, 1),
            "ten_million_entries_invocations": math.ceil(modelled_s / budget_s),
            "ten_million_entries_parts": math.ceil(
                TEN_MILLION * job["bytes"] / max(1, job["rows"]) / jobs.PART_BYTES
            ),
        },
    }


def _csv_job(stack: LocalStack, admin: dict[str, str], query: dict[str, str]) -> dict[str, Any]:
    """A CSV job of the range, started and run as deployed; its rows, parts and CPU time."""
    start = api_event(sample_of(stack.functions["StartJobFunction"]), authorizer=admin,
                      body={"type": "transactions_csv", **query})  # fmt: skip
    answer = stack.invoke("StartJobFunction", start)
    if answer["statusCode"] != 202:
        raise HarnessError(f"the job did not start: {answer}")
    job_id = json.loads(answer["body"])["id"]
    sqs, url = stack.clients("sqs"), str(stack.resources["JobsQueue"]["Ref"])
    arn = str(stack.resources["JobsQueue"]["Arn"])
    invocations, cpu = 0, 0.0
    receive = {"QueueUrl": url, "WaitTimeSeconds": 1, "MessageSystemAttributeNames": ["All"]}
    while messages := sqs.receive_message(**receive).get("Messages"):
        sqs.delete_message(QueueUrl=url, ReceiptHandle=messages[0]["ReceiptHandle"])
        if json.loads(messages[0]["Body"])["job_id"] != job_id:
            continue  # a job the operations' bench queued and nothing runs
        # this thread's CPU: the handler's own (the embedded endpoint serves in its own)
        started = time.thread_time()
        result = stack.invoke("RunJobFunction", sqs_event(messages, arn))  # a 900 s budget
        cpu += time.thread_time() - started
        invocations += 1
        if result != {"batchItemFailures": []}:
            raise HarnessError(f"the job's invocation failed: {result}")
    stored = dynamo.get_item(get_settings().reports_table, {"pk": f"JOB#{job_id}", "sk": "JOB"})
    if not stored or stored.get("status") != "succeeded":
        raise HarnessError(f"the CSV job did not succeed: {stored}")
    parts = stored.get("parts") or []
    head = stack.clients("s3").head_object(Bucket=str(stack.resources["ReportsBucket"]["Ref"]),
                                          Key=str(stored["file"]))  # fmt: skip
    return {
        "rows": int(stored["rows"]),
        "parts": len(parts),
        "bytes": int(head["ContentLength"]),
        "invocations": invocations,
        "cpu_s": round(cpu, 2),
    }


def print_report(figures: dict[str, Any]) -> None:
    s, j = figures["summary"], figures["csv_job"]
    print(
        f"\nSummary of {figures['entries']} entries over {figures['days']} days: from the log"
        f" {s['from_log']['requests']} requests, {s['from_log']['seconds_on_moto']} s; from the"
        f" totals {s['from_totals']['requests']} requests, {s['from_totals']['seconds_on_moto']}"
        f" s (ratio {s['requests_ratio']} in requests, {s['seconds_ratio']} in time); equal"
    )
    print(
        f"CSV job: {j['rows']} rows in {j['parts']} parts ({j['bytes'] / 1024 / 1024:.1f} MB),"
        f" {j['invocations']} invocation(s), {j['cpu_s']} CPU s ({j['rows_per_cpu_second']:,}"
        f" rows per CPU s); 10M entries modelled: {j['ten_million_entries_modelled_minutes']}"
        f" min, {j['ten_million_entries_invocations']} invocations,"
        f" {j['ten_million_entries_parts']} parts"
    )


def main(argv: list[str] | None = None) -> int:
    """This section alone (`python -m bench.jobs`): the seeded range, then the figures above,
    written into bench/results.json's `admin_jobs` (the rest of the file left as it is)."""
    import argparse
    import sys

    from bench import log as log_bench
    from bench.harness import Driver, local_stack
    from bench.run import RESULTS_PATH, quiet_handlers

    parser = argparse.ArgumentParser(prog="python -m bench.jobs")
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--output", type=Path, default=RESULTS_PATH)
    args = parser.parse_args(argv)

    def progress(message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    with local_stack() as stack, quiet_handlers():
        admin = Driver(stack).new_admin()
        progress(f"writing {args.entries} entries over {log_bench.EXPORT_DAYS} days")
        log_bench.seed(stack, args.entries, log_bench.EXPORT_FIRST_DAY)
        seeded = {"entries": args.entries, "days": log_bench.EXPORT_DAYS}
        figures = measure(stack, admin.authorizer, seeded, log_bench.EXPORT_FIRST_DAY, progress)
    report = json.loads(args.output.read_text()) if args.output.exists() else {}
    report["admin_jobs"] = figures
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_report(figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
