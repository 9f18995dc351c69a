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
3. An audit job (the sweep, user by user) over `AUDIT_USERS` users seeded straight into the
   tables, each with a profile, `AUDIT_ENTRIES_PER_USER` card top-ups (the payments, the
   chain of their log entries and append records) and the balance they add up to, beside
   every user the rest of the bench made: the job run as deployed, its requests (by
   operation) and the handler's CPU, the result checked clean for the seeded users (the
   bench fails otherwise), and the model for 10 million entries at
   `AUDIT_ENTRIES_PER_USER` a user: per user, the handler's CPU plus its requests at
   `cost.LATENCY_MS` each, `jobs.AUDIT_THREADS` users' waits overlapping (their CPU does
   not: the GIL), and the invocations it takes at `jobs.MARGIN_MS` short of 900 s each.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from bench import cost
from bench.harness import CallCounter, HarnessError, LocalStack
from cashew import aws, dynamo
from cashew.config import get_settings
from cashew.ledger import totals
from local.consumers import sqs_event
from local.events import api_event, sample_of

TEN_MILLION = 10_000_000
AUDIT_USERS = 400
AUDIT_ENTRIES_PER_USER = 10
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
    progress(f"audit job: {AUDIT_USERS} users of {AUDIT_ENTRIES_PER_USER} entries, and the rest")
    audit = _audit_job(stack, admin, counter, budget_s)
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
        "audit_job": audit,
    }


def _csv_job(stack: LocalStack, admin: dict[str, str], query: dict[str, str]) -> dict[str, Any]:
    """A CSV job of the range, started and run as deployed; its rows, parts and CPU time."""
    job = _run_job(stack, admin, {"type": "transactions_csv", **query})
    stored = job["stored"]
    return {
        "rows": int(stored["rows"]),
        "parts": len(stored.get("parts") or []),
        "bytes": len(job["file"]),
        "invocations": job["invocations"],
        "cpu_s": round(job["cpu_s"], 2),
    }


def _seed_audited(count: int, per_user: int) -> list[str]:
    """`count` users, each with a profile, `per_user` card top-ups (the payments, their log
    entries and append records, chained) and the balance they add up to, written straight
    into the tables; their ids."""
    from cashew.accounts.store import Profile, Settings
    from cashew.ledger import chain
    from cashew.ledger.models import Entry
    from cashew.ledger.store import Marker, StoredEntry
    from cashew.payments.models import PaymentResponse
    from cashew.payments.store import StoredPayment

    settings, at = get_settings(), "2025-03-01T09:00:00.000Z"
    writes: dict[str, list[dict[str, Any]]] = {}
    users = [f"usr_9AUDIT{n:020d}" for n in range(count)]
    for n, user in enumerate(users):
        profile = Profile(id=user, email=f"audited-{n}@bench.invalid", name="Audited",
                          phone=None, role="user", settings=Settings(), created_at=at)  # fmt: skip
        writes.setdefault(settings.accounts_table, []).append(profile.to_item())
        prev, total = chain.GENESIS, 0
        for k in range(1, per_user + 1):
            pay_id, amount = f"pay_9AUDIT{n:014d}{k:06d}", 100 + k
            payment = PaymentResponse.model_validate({
                "id": pay_id, "type": "top_up", "status": "succeeded", "amount": amount,
                "currency": "USD", "payer_id": user, "payee_id": user,
                "source": {"type": "card"}, "amount_captured": amount, "amount_refunded": 0,
                "failure_code": None, "failure_message": None,
                "risk": {"score": 0, "level": "normal"}, "description": None,
                "created_at": at, "updated_at": at,
            })  # fmt: skip
            writes.setdefault(settings.payments_table, []).append(
                StoredPayment(payment, "ch_bench", []).to_item()
            )
            fields = {
                "id": f"txn_9AUDIT{n:014d}{k:06d}", "outcome_id": f"{pay_id}:succeeded",
                "payment_id": pay_id, "user_id": user, "type": "top_up", "direction": "credit",
                "funds": "balance", "amount": amount, "currency": "USD", "status": "succeeded",
                "failure_code": None, "occurred_at": at, "seq": k, "prev_hash": prev,
            }  # fmt: skip
            entry = Entry(**fields, hash=chain.entry_hash(fields))
            prev, total = entry.hash, total + amount
            writes.setdefault(settings.log_table, []).extend([
                StoredEntry(entry).to_item(),
                Marker(user, entry.outcome_id, entry.seq, entry.hash).to_item(),
            ])  # fmt: skip
        writes[settings.accounts_table].append(
            {"pk": f"USER#{user}", "sk": "BALANCE#USD", "currency": "USD", "available": total}
        )
    client = aws.dynamodb()
    for table, items in writes.items():
        for first in range(0, len(items), 25):
            request: dict[str, Any] = {table: [{"PutRequest": {"Item": dynamo.serialize(i)}}
                                               for i in items[first : first + 25]]}  # fmt: skip
            while request:
                request = client.batch_write_item(RequestItems=request).get("UnprocessedItems")
    return users


_EXPORT_OWNER = re.compile(r"USER#usr_[0-9]{26}")
"""The owners `bench.log.seed` gives the CSV export's entries (digits only: no real id)."""


def _forget_export_entries() -> None:
    """Delete the entries `bench.log.seed` wrote straight into the log for the summary and
    the CSV job: a log no deployed stack can hold (chains with no user and no record behind
    them), which the audit would rightly name, every entry of it."""
    table, client = get_settings().log_table, aws.dynamodb()
    request: dict[str, Any] = {"TableName": table, "ProjectionExpression": "pk, sk"}
    doomed: list[dict[str, Any]] = []
    while True:
        response = client.scan(**request)
        doomed += [i for i in response.get("Items", []) if _EXPORT_OWNER.fullmatch(i["pk"]["S"])]
        if "LastEvaluatedKey" not in response:
            break
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    for first in range(0, len(doomed), 25):
        batch: dict[str, Any] = {table: [{"DeleteRequest": {"Key": key}}
                                         for key in doomed[first : first + 25]]}  # fmt: skip
        while batch:
            batch = client.batch_write_item(RequestItems=batch).get("UnprocessedItems") or {}


def _audit_job(
    stack: LocalStack, admin: dict[str, str], counter: CallCounter, budget_s: float
) -> dict[str, Any]:
    """An audit job of everyone, the seeded users among them, run as deployed: its
    requests, CPU and result, and the model for 10 million entries."""
    from cashew import reports

    _forget_export_entries()
    seeded = set(_seed_audited(AUDIT_USERS, AUDIT_ENTRIES_PER_USER))
    audit_users, in_threads, adding = reports.audit_users, [0.0], threading.Lock()

    def timed(*args: Any) -> Any:  # the CPU of the job's audit threads, each its own
        started = time.thread_time()
        try:
            return audit_users(*args)
        finally:
            with adding:
                in_threads[0] += time.thread_time() - started

    counter.install()
    reports.audit_users = timed  # type: ignore[assignment]
    try:
        with counter.window() as calls:
            job = _run_job(stack, admin, {"type": "audit"})
    finally:
        reports.audit_users = audit_users
        counter.uninstall()
    job["cpu_s"] += in_threads[0]
    stored, file = job["stored"], job["file"]
    audit = json.loads(file)
    wrong = [d for d in audit["discrepancies"] if d.get("user_id") in seeded]
    if wrong or audit["chains"] < len(seeded):
        raise HarnessError(f"the audit of the seeded users is not clean: {wrong[:5]}")
    users, entries = audit["chains"], audit["entries"]
    per_user_cpu_s = job["cpu_s"] / users
    per_user_requests = len(calls) / users
    latency_s = sum(cost.latency(call) for call in calls) / 1000 / max(1, len(calls))
    ten_million_users = TEN_MILLION / AUDIT_ENTRIES_PER_USER
    threads = _jobs().AUDIT_THREADS  # waits overlap, CPU does not (the GIL)
    modelled_s = ten_million_users * (per_user_cpu_s + per_user_requests * latency_s / threads)
    by_call: dict[str, int] = {}
    for call in calls:
        by_call[call] = by_call.get(call, 0) + 1
    return {
        "users": users,
        "entries": entries,
        "seeded_users": len(seeded),
        "discrepancies": stored["result"]["discrepancies"],
        "invocations": job["invocations"],
        # one checkpoint a page: its state, and its findings if it found any; then the file
        "checkpoints": by_call.get("S3.PutObject", 0) - job["found_parts"] - 1,
        "found_parts": job["found_parts"],
        "requests": len(calls),
        "requests_by_call": dict(sorted(by_call.items())),
        "requests_per_user": round(per_user_requests, 2),
        "cpu_s": round(job["cpu_s"], 2),
        "cpu_ms_per_user": round(per_user_cpu_s * 1000, 2),
        "modelled_latency_ms_per_request": round(latency_s * 1000, 2),
        "threads": threads,
        "ten_million_entries_users": int(ten_million_users),
        "ten_million_entries_modelled_minutes": round(modelled_s / 60, 1),
        "ten_million_entries_invocations": math.ceil(modelled_s / budget_s),
    }


def _run_job(stack: LocalStack, admin: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    """A job started and run as deployed (its messages, in this process, a 900 s budget each):
    the stored job, its file, the invocations, the handler's CPU seconds, and the audit's
    checkpoints (how many, the largest)."""
    start = api_event(sample_of(stack.functions["StartJobFunction"]), authorizer=admin,
                      body=body)  # fmt: skip
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
        started = time.thread_time()  # the handler's CPU (the endpoint serves in its own)
        result = stack.invoke("RunJobFunction", sqs_event(messages, arn))
        cpu += time.thread_time() - started
        invocations += 1
        if result != {"batchItemFailures": []}:
            raise HarnessError(f"the job's invocation failed: {result}")
    stored = dynamo.get_item(get_settings().reports_table, {"pk": f"JOB#{job_id}", "sk": "JOB"})
    if not stored or stored.get("status") != "succeeded":
        raise HarnessError(f"the job did not succeed: {stored}")
    s3, bucket = stack.clients("s3"), str(stack.resources["ReportsBucket"]["Ref"])
    file = s3.get_object(Bucket=bucket, Key=str(stored["file"]))["Body"].read()
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"jobs/{job_id}/audit-sweep/")
    return {
        "stored": stored, "file": file, "invocations": invocations, "cpu_s": cpu,
        "found_parts": len(listed.get("Contents", [])),  # checkpoints are deleted as replaced
    }  # fmt: skip


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
    a = figures["audit_job"]
    print(
        f"Audit job: {a['users']} users, {a['entries']} entries, {a['invocations']}"
        f" invocation(s), {a['checkpoints']} checkpoints ({a['found_parts']} with findings),"
        f" {a['requests']} requests ({a['requests_per_user']} a user),"
        f" {a['cpu_ms_per_user']} CPU ms a user; 10M entries ({a['ten_million_entries_users']:,}"
        f" users) modelled: {a['ten_million_entries_modelled_minutes']} min,"
        f" {a['ten_million_entries_invocations']} invocations"
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
