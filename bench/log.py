"""The transaction log's figures for `make bench`.

1. Consumer throughput: outcome messages, in batches of the template's BatchSize (10), given
   to the log consumer's handler against the embedded endpoint (which serves one request at
   a time), and the entries it appends per second:
     - `spread`: every outcome between two new users (each append reads a fresh head);
     - `hot payee`: every outcome pays the same payee, whose chain every batch appends to;
     - `hot payee, 4 consumers`: the same, with four batches invoked at once (Lambda runs
       several concurrent batches), so appends race for the payee's next seq and the losers
       re-read the head and retry; an append that loses 20 times in a row fails its record,
       which is delivered again (counted as `records_delivered_again`).
   AWS calls per entry are counted for the single consumer runs (the queue's own calls,
   made by Lambda's poller, are not the function's and are not counted).
2. CSV export of a range of 100,000 entries (`--export-entries`): the entries are written
   straight into the log table, spread over the range's days; then the export's pages
   (`limit` 5,000, the largest allowed) are fetched one after the other, following the
   cursor. Reported: pages, rows, the largest page in bytes (Lambda's response limit is
   6 MB), the slowest page (API Gateway gives up after 29 s; the time here is on moto), and
   the peak Python memory of one page's invocation (tracemalloc; the function has 1,024 MB).
"""

from __future__ import annotations

import copy
import functools
import json
import statistics
import subprocess  # nosec B404 # runs this repository's own Python, no shell
import sys
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

from bench.harness import CallCounter, HarnessError, LocalStack
from cashew import aws, dynamo
from cashew.config import get_settings
from cashew.ledger import chain
from local.events import sample_of
from local.runtime import LambdaContext, WorkerConfig
from local.specs import function_env

REPO = Path(__file__).resolve().parent.parent
BATCH = 10
MAX_DELIVERIES = 5  # the queue's maxReceiveCount
EXPORT_PAGE = 5_000
EXPORT_DAYS = 20
LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:26].upper()}"


def _outcome(payer: str, payee: str, n: int) -> str:
    payment = _id("pay")
    return json.dumps({
        "outcome_id": f"{payment}:succeeded", "payment_id": payment, "type": "payment",
        "status": "succeeded", "amount": 100 + n, "currency": "USD", "payer_id": payer,
        "payee_id": payee, "source": "balance", "failure_code": None,
        "occurred_at": "2026-11-30T09:30:00.000Z",
    })  # fmt: skip


def _event(sample: dict[str, Any], bodies: list[str]) -> dict[str, Any]:
    [record] = sample["Records"]
    records = []
    for body in bodies:
        one = copy.deepcopy(record)
        one.update(messageId=str(uuid.uuid4()), body=body)
        records.append(one)
    return {"Records": records}


def _instances(stack: LocalStack, count: int) -> list[Callable[[dict[str, Any]], Any]]:
    """`count` instances of the log consumer, each with its handler module loaded anew (as
    each Lambda execution environment has its own): Powertools' batch processor keeps the
    batch it is processing in module state, which instances must not share."""
    spec = stack.functions["LogConsumerFunction"]
    return [
        functools.partial(
            _invoke, stack.new_instance("LogConsumerFunction", f"consumer_instance_{n}"), spec
        )
        for n in range(count)
    ]


def _invoke(handler: Callable[[Any, Any], Any], spec: Any, event: dict[str, Any]) -> Any:
    return handler(event, LambdaContext(WorkerConfig.of(spec, {}, False), str(uuid.uuid4())))


def _consume(
    stack: LocalStack, sample: dict[str, Any], batches: list[list[str]], workers: int
) -> tuple[float, int]:
    """Every batch consumed by `workers` instances at once, each taking its batches one after
    the other; the records a batch reports as failed are delivered again (as SQS does once
    their visibility timeout is over, here at once). Returns the seconds it took and how many
    records were delivered again."""
    redelivered = [0]
    instances = _instances(stack, workers)

    def run(instance: int) -> None:
        invoke = instances[instance]
        for batch in batches[instance::workers]:
            event = _event(sample, batch)
            for _ in range(MAX_DELIVERIES):
                try:
                    answer = invoke(event)["batchItemFailures"]
                except BatchProcessingError:  # every record failed: the batch comes back
                    answer = [{"itemIdentifier": r["messageId"]} for r in event["Records"]]
                failed = {f["itemIdentifier"] for f in answer}
                if not failed:
                    break
                redelivered[0] += len(failed)
                event = {"Records": [r for r in event["Records"] if r["messageId"] in failed]}
            else:
                raise HarnessError(f"records failing after {MAX_DELIVERIES} deliveries: {failed}")

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(run, range(workers)))
    return time.perf_counter() - started, redelivered[0]


def consumer_throughput(
    stack: LocalStack, counter: CallCounter, outcomes: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    sample = sample_of(stack.functions["LogConsumerFunction"])
    hot = _id("usr")
    scenarios: dict[str, tuple[Callable[[int], str], int]] = {
        "spread": (lambda n: _outcome(_id("usr"), _id("usr"), n), 1),
        "hot payee": (lambda n: _outcome(_id("usr"), hot, n), 1),
        "hot payee, 4 consumers": (lambda n: _outcome(_id("usr"), hot, n), 4),
    }
    found: dict[str, Any] = {}
    for name, (make, workers) in scenarios.items():
        progress(f"log consumer: {outcomes} outcomes, {name}")
        bodies = [make(n) for n in range(outcomes)]
        batches = [bodies[i : i + BATCH] for i in range(0, len(bodies), BATCH)]
        counter.install()
        stack.invoke("LogConsumerFunction", _event(sample, [make(-1)]))  # warm the clients
        with counter.window() as calls:
            seconds, redelivered = _consume(stack, sample, batches, workers)
        entries = 2 * outcomes
        found[name] = {
            "outcomes": outcomes,
            "entries": entries,
            "seconds": round(seconds, 2),
            "entries_per_second": round(entries / seconds, 1),
            "aws_calls_per_entry": round(len(calls) / entries, 2),
            "records_delivered_again": redelivered,
        }
    counter.uninstall()
    return found


def seed(stack: LocalStack, entries: int, first_day: date) -> None:
    """`entries` entries over EXPORT_DAYS days, written straight into the log table."""
    table = get_settings().log_table
    client = aws.dynamodb()
    items: list[dict[str, Any]] = []
    for n in range(entries):
        day = first_day + timedelta(days=n % EXPORT_DAYS)
        user = f"usr_{n % 1000:026d}"
        fields = {
            "id": f"txn_{n:026d}", "outcome_id": f"pay_{n:026d}:succeeded",
            "payment_id": f"pay_{n:026d}", "user_id": user, "type": "payment",
            "direction": "debit", "funds": "balance", "amount": 1 + n % 99_999,
            "currency": "USD", "status": "succeeded", "failure_code": None,
            "occurred_at": f"{day}T{(n // EXPORT_DAYS) % 24:02d}:{n % 60:02d}:00.{n % 1000:03d}Z",
            "seq": n // 1000 + 1, "prev_hash": chain.GENESIS,
        }  # fmt: skip
        fields["hash"] = chain.entry_hash(fields)
        items.append(
            {
                "pk": f"USER#{user}",
                "sk": f"SEQ#{fields['seq']:012d}",
                "day": day.isoformat(),
                **fields,
            }
        )
        if len(items) == 25 or n == entries - 1:
            request: dict[str, Any] = {
                table: [{"PutRequest": {"Item": dynamo.serialize(i)}} for i in items]
            }
            while request:
                request = (
                    client.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}
                )
            items = []


EXPORT_FIRST_DAY = date(2025, 1, 1)


def csv_export(
    stack: LocalStack, admin: dict[str, str], entries: int, progress: Callable[[str], None]
) -> dict[str, Any]:
    first_day = EXPORT_FIRST_DAY
    last_day = first_day + timedelta(days=EXPORT_DAYS - 1)
    progress(f"csv export: writing {entries} entries over {EXPORT_DAYS} days")
    started = time.perf_counter()
    seed(stack, entries, first_day)
    seeding = time.perf_counter() - started
    spec = stack.functions["ReportCsvFunction"]
    job = {
        "code_dir": str(spec.code_dir),
        "layer_dirs": [str(d) for d in spec.layer_dirs],
        "handler_module": spec.handler_module,
        "handler_attr": spec.handler_attr,
        "env": function_env(spec, stack.resources, stack.endpoint),
        "sample": sample_of(spec),
        "authorizer": admin,
        "query": {
            "from": f"{first_day}T00:00:00Z",
            "to": f"{last_day}T23:59:59.999Z",
            "limit": str(EXPORT_PAGE),
        },
    }
    progress("csv export: fetching the pages in a process of its own")
    worker = subprocess.run(  # nosec B603 # fixed argv of sys.executable, no shell
        [sys.executable, "-m", "bench.export_worker"],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    lines = worker.stdout.strip().splitlines()
    found = json.loads(lines[-1]) if lines else {}
    if worker.returncode != 0 or "error" in found:
        raise HarnessError(f"the CSV export failed: {found or worker.stderr[-2000:]}")
    if found["rows"] != entries:
        raise HarnessError(f"the CSV export gave {found['rows']} rows for {entries} entries")
    sizes, seconds = found["sizes"], found["seconds"]
    return {
        "entries": entries,
        "days": EXPORT_DAYS,
        "page_limit": EXPORT_PAGE,
        "pages": len(sizes),
        "rows": found["rows"],
        "largest_page_bytes": max(sizes),
        "largest_page_share_of_lambda_limit": round(max(sizes) / LAMBDA_RESPONSE_LIMIT, 3),
        "slowest_page_s_on_moto": round(max(seconds), 2),
        "median_page_s_on_moto": round(statistics.median(seconds), 2),
        "rss_after_import_mb": round(found["rss_after_import_mb"], 1),
        "peak_rss_mb": round(found["peak_rss_mb"], 1),
        "seeding_s": round(seeding, 1),
    }
