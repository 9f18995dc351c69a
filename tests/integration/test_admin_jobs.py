"""Long admin work off the request path: the summary's running totals (kept by the log
consumer), and the CSV export and the audit as jobs (POST creates one, GET follows it, a
worker on JobsQueue runs it and writes its file to ReportsBucket)."""

from __future__ import annotations

import csv
import io
import itertools
import json
import urllib.request
from datetime import date, timedelta
from email.message import Message
from typing import Any

import moto.s3.models
import pytest

from cashew import dynamo, reports
from cashew.config import get_settings
from cashew.jobs import service as jobs
from cashew.jobs import store as job_store
from cashew.ledger import totals
from local.consumers import sqs_event
from tests.integration.conftest import add_card, top_up
from tests.integration.test_admin_log import ADMIN, admin_list, whole_day
from tests.integration.test_iam_policies import recorder  # noqa: F401 - a fixture
from tests.integration.test_log_reads import as_user, deliver, new_id

_DAYS = itertools.count()


@pytest.fixture
def day() -> str:
    """The first of three days of its own (test_admin_log's are from 2001): a range of them
    holds this test's outcomes only."""
    return (date(2004, 1, 1) + timedelta(days=3 * next(_DAYS))).isoformat()


@pytest.fixture(autouse=True)
def _job_functions_env(stack, monkeypatch):
    """The jobs' functions' own variables (the queue, the bucket)."""
    monkeypatch.setenv("CASHEW_JOBS_QUEUE_URL", stack.resources["JobsQueue"]["Ref"])
    monkeypatch.setenv("CASHEW_REPORTS_BUCKET", stack.resources["ReportsBucket"]["Ref"])
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def counted_from(stack):
    """The totals' FROM as the test sets it (put back afterwards)."""
    table = stack.resources["ReportsTable"]["Ref"]
    key = {"pk": "TOTALS", "sk": "FROM"}
    before = dynamo.get_item(table, key)

    def set_to(day: str) -> None:
        dynamo.put_item(table, {**key, "day": day})

    yield set_to
    if before is not None:
        dynamo.put_item(table, before)


def outcomes_of(stack, day: str) -> tuple[str, str]:
    """On `day`: a top-up, a payment (two entries), a fraud decline, a EUR payment."""
    payer, payee = new_id("usr"), new_id("usr")
    parties = {"payer_id": payer, "payee_id": payee}
    at = f"{day}T{{}}:00:00.000Z"
    deliver(stack, payer_id=payer, payee_id=payer, type="top_up", source="card",
            amount=1_000, occurred_at=at.format("08"))  # fmt: skip
    deliver(stack, **parties, type="payment", amount=300, occurred_at=at.format("09"))
    deliver(stack, **parties, type="payment", status="failed", failure_code="fraud_suspected",
            source="card", amount=200, occurred_at=at.format("10"))  # fmt: skip
    deliver(stack, **parties, type="payment", currency="EUR", amount=50,
            occurred_at=at.format("11"))  # fmt: skip
    return payer, payee


def summary(stack, **query: str) -> dict[str, Any]:
    answer = stack.call("ReportSummaryFunction", "ledger/report_summary.json",
        authorizer=ADMIN, query=query)  # fmt: skip
    assert answer.status == 200, answer.body
    return answer.body


# ---------------------------------------------------------------------- the totals


def test_the_summary_of_whole_days_comes_from_the_totals_and_agrees_with_the_log(
    stack, day, counted_from
):
    # Given outcomes on two days, one delivered twice (the queue redelivers)
    first, second = day, (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    outcomes_of(stack, first)
    payer, payee = outcomes_of(stack, second)
    again = deliver(stack, payer_id=payer, payee_id=payee, type="payment", amount=7,
                    occurred_at=f"{second}T12:00:00.000Z")  # fmt: skip
    deliver(stack, **{k: again[k] for k in ("payer_id", "payee_id", "type", "amount",
                                           "occurred_at", "payment_id")})  # fmt: skip
    whole = {"from": f"{first}T00:00:00Z", "to": f"{second}T23:59:59.999Z"}
    # the day's totals hold each outcome once (the redelivery added nothing)
    sums = totals.Totals()
    totals.of_days([second], sums)
    assert sums.outcomes == 5
    # When the summary reads the totals, and then (FROM after both days) the log alone
    counted_from(totals.ALL_DAYS)
    from_totals = summary(stack, **whole)
    counted_from("9999-01-01")
    from_log = summary(stack, **whole)
    # Then both say the same, each outcome counted once
    assert from_totals == from_log
    assert from_totals["outcomes"] == 9
    assert {(g["currency"], g["type"], g["status"]): (g["count"], g["amount"])
            for g in from_totals["groups"]} == {
        ("EUR", "payment", "succeeded"): (2, 100),
        ("USD", "payment", "failed"): (2, 400),
        ("USD", "payment", "succeeded"): (3, 607),
        ("USD", "top_up", "succeeded"): (2, 2_000),
    }  # fmt: skip
    assert from_totals["fraud_declines"] == [{"currency": "USD", "count": 2, "amount": 400}]


def test_a_range_with_partial_days_reads_its_edges_from_the_log(stack, day, counted_from):
    # Given a day's outcomes, and the totals holding every day
    outcomes_of(stack, day)
    counted_from(totals.ALL_DAYS)
    # When the range starts at 09:30 (the 08:00 top-up and 09:00 payment left out) and ends
    # the next day at noon
    next_day = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    answer = summary(stack, **{"from": f"{day}T09:30:00Z", "to": f"{next_day}T12:00:00Z"})
    # Then only the two outcomes after 09:30 are counted
    assert answer["outcomes"] == 2
    assert {(g["currency"], g["status"]) for g in answer["groups"]} == {
        ("USD", "failed"), ("EUR", "succeeded"),
    }  # fmt: skip


# ------------------------------------------------------------------------ the jobs


def start(stack, body: dict[str, Any], authorizer: dict[str, Any] = ADMIN):
    return stack.call("StartJobFunction", "jobs/start_job.json", authorizer=authorizer, body=body)


def follow(stack, job_id: str) -> dict[str, Any]:
    answer = stack.call("GetJobFunction", "jobs/get_job.json", authorizer=ADMIN,
                        path={"id": job_id})  # fmt: skip
    assert answer.status == 200, answer.body
    return answer.body


def work(stack, job_id: str, *, limit: int = 50, look: bool = True) -> list[dict[str, Any]]:
    """Run JobsQueue's messages for the job through RunJobFunction until none is left; the
    job as it stood after each invocation (with `look`)."""
    sqs, url = stack.clients("sqs"), stack.resources["JobsQueue"]["Ref"]
    arn = stack.resources["JobsQueue"]["Arn"]
    seen = []
    for _ in range(limit):
        messages = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=1, MessageSystemAttributeNames=["All"]
        ).get("Messages", [])
        if not messages:
            return seen
        message = messages[0]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if json.loads(message["Body"])["job_id"] != job_id:
            continue  # an earlier test's, whose job is done with
        assert stack.invoke("RunJobFunction", sqs_event([message], arn)) == {
            "batchItemFailures": []
        }
        if look:
            seen.append(follow(stack, job_id))
    raise AssertionError("the job did not finish")


def download(url: str) -> tuple[bytes, Message]:
    """The file a link gives, and its headers (case-insensitive)."""
    assert url.startswith("http://127.0.0.1:")  # the embedded endpoint, here
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read(), response.headers


def test_a_csv_job_writes_the_range_and_links_it(stack, day):
    # Given a day's outcomes
    outcomes_of(stack, day)
    # When an admin starts a CSV job of that day
    answer = start(stack, {"type": "transactions_csv", **whole_day(day)})
    # Then it is queued, and says where to follow it
    assert answer.status == 202, answer.body
    job = answer.body
    assert answer.headers["Location"] == f"/v1/admin/jobs/{job['id']}"
    assert (job["type"], job["status"], job["progress"]) == ("transactions_csv", "queued", 0)
    assert (job["since"], job["until"]) == (f"{day}T00:00:00.000Z", f"{day}T23:59:59.999Z")
    assert job["download_url"] is None
    # And once the worker ran it, it succeeded, with a link to exactly the CSV's rows
    [done] = work(stack, job["id"])
    assert (done["status"], done["progress"], done["rows"]) == ("succeeded", 100, 6)
    body, headers = download(done["download_url"])
    assert headers["Content-Disposition"] == 'attachment; filename="transactions.csv"'
    table = list(csv.reader(io.StringIO(body.decode())))
    assert tuple(table[0]) == reports.CSV_COLUMNS
    assert [r[0] for r in table[1:]] == [
        e["id"] for e in admin_list(stack, **whole_day(day))["data"]
    ]
    assert done["download_expires_at"] > done["updated_at"]


def test_a_csv_job_goes_on_where_it_stopped_across_invocations(stack, day, monkeypatch):
    # Given 3 days of outcomes, parts of ~300 bytes (S3's 5 MiB minimum lowered for the test),
    # and invocations that each have time for one part only
    for offset in range(3):
        outcomes_of(stack, (date.fromisoformat(day) + timedelta(days=offset)).isoformat())
    monkeypatch.setattr(jobs, "PART_BYTES", 300)
    monkeypatch.setattr(jobs, "PAGE", 2)
    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1)
    last = (date.fromisoformat(day) + timedelta(days=2)).isoformat()
    whole = {"from": f"{day}T00:00:00Z", "to": f"{last}T23:59:59.999Z"}
    job = start(stack, {"type": "transactions_csv", **whole}).body
    # When the worker runs its messages, each invocation giving the job back
    seen = work(stack, job["id"])
    # Then it took several invocations, its progress only grew, and the file is every row once
    progress = [s["progress"] for s in seen]
    assert len(seen) > 3 and progress == sorted(progress) and progress[-1] == 100
    assert all(s["status"] == "running" for s in seen[:-1]) and seen[-1]["status"] == "succeeded"
    body, _ = download(seen[-1]["download_url"])
    rows = list(csv.reader(io.StringIO(body.decode())))[1:]
    everyone = admin_list(stack, **whole)["data"]
    assert [r[0] for r in rows] == [e["id"] for e in everyone] and len(rows) == 18
    assert seen[-1]["rows"] == 18


def test_an_audit_job_reports_the_audit_and_links_it_whole(stack, new_user):
    user = new_user()
    assert top_up(stack, user, add_card(stack, user), 500).status == 201
    stack.settle()  # a chain the audit reads (it visits users: profiles and balances)
    answer = start(stack, {"type": "audit"})
    assert answer.status == 202, answer.body
    done = work(stack, answer.body["id"], limit=500)[-1]  # a checkpoint a page (test_audit_sweep)
    assert (done["status"], done["progress"]) == ("succeeded", 100)
    body, headers = download(done["download_url"])
    assert headers["Content-Type"] == "application/json"
    audit = json.loads(body)
    assert done["result"] == {
        "chains_valid": audit["chains_valid"], "balances_match": audit["balances_match"],
        "card_money_explained": audit["card_money_explained"], "chains": audit["chains"],
        "entries": audit["entries"], "discrepancies": len(audit["discrepancies"]),
        "pending": len(audit["pending"]),
    }  # fmt: skip
    assert audit["chains"] > 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"type": "audit", "from": "2026-01-01T00:00:00Z"}, "from"),
        ({"type": "transactions_csv", "from": "2020-01-01T00:00:00Z",
          "to": "2021-06-01T00:00:00Z"}, "from"),
        ({"type": "transactions_csv", "from": "2026-02-01T00:00:00Z",
          "to": "2026-01-01T00:00:00Z"}, "from"),
        ({"type": "everything"}, "type"),
        ({"type": "audit", "extra": 1}, "extra"),
        ({"type": "transactions_csv", "to": "yesterday"}, "to"),
    ],
)  # fmt: skip
def test_a_bad_job_request_is_refused_and_queues_nothing(stack, body, field):
    answer = start(stack, body)
    assert answer.status in (400, 422), answer.body
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert field in json.dumps(answer.body["errors"])
    sqs = stack.clients("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=stack.resources["JobsQueue"]["Ref"], AttributeNames=["ApproximateNumberOfMessages"]
    )
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "0"


@pytest.mark.parametrize("job_id", ["job_01JCQ3K2K4M6N8P0Q2R4S6T8V2", "nope", "JOB#x"])
def test_a_job_no_one_started_is_404(stack, job_id):
    answer = stack.call("GetJobFunction", "jobs/get_job.json", authorizer=ADMIN,
                        path={"id": job_id})  # fmt: skip
    assert (answer.status, answer.body["code"]) == (404, "not_found")


def test_a_job_is_run_by_one_worker_at_a_time(stack, day):
    # Given a queued job that one worker has claimed
    job = start(stack, {"type": "transactions_csv", **whole_day(day)}).body
    held = job_store.claim(job["id"], "first")
    assert held is not None and held.job.status == "running"
    # When a second delivery of its message reaches another worker
    # Then it may not take the job (its message comes back later), nor write it
    with pytest.raises(job_store.Leased):
        job_store.claim(job["id"], "second")
    with pytest.raises(job_store.LeaseLost):
        job_store.save(job["id"], "second", release=True, status="failed")
    # And once the job is finished, a late message leaves it alone
    job_store.save(job["id"], "first", release=True, status="succeeded", progress=100)
    assert job_store.claim(job["id"], "third") is None
    work(stack, job["id"])  # its message: nothing to do
    assert follow(stack, job["id"])["status"] == "succeeded"


def test_a_job_that_never_gets_anywhere_fails(stack, day, monkeypatch):
    # Given a job whose every run dies before its first checkpoint
    job = start(stack, {"type": "transactions_csv", **whole_day(day)}).body
    for attempt in range(jobs.MAX_ATTEMPTS):
        assert job_store.claim(job["id"], f"worker{attempt}") is not None
        table = stack.resources["ReportsTable"]["Ref"]
        dynamo.update_item(
            table, {"pk": f"JOB#{job['id']}", "sk": "JOB"}, "SET lease_until = :past", {":past": 0}
        )  # its lease runs out
    # When its message comes back once more
    work(stack, job["id"])
    # Then the job is failed, and says why
    found = follow(stack, job["id"])
    assert (found["status"], found["error"]) == ("failed", "the job stopped making progress")


def test_only_admins_start_or_follow_jobs(stack):
    user = as_user(new_id("usr"))
    answer = start(stack, {"type": "audit"}, authorizer=user)
    assert (answer.status, answer.body["code"]) == (403, "forbidden")


def test_every_action_of_the_job_functions_is_granted(stack, day, recorder):  # noqa: F811
    outcomes_of(stack, day)
    with recorder.acting_as("StartJobFunction"):
        csv_job = start(stack, {"type": "transactions_csv", **whole_day(day)}).body
    audit_job = start(stack, {"type": "audit"}).body
    with recorder.acting_as("RunJobFunction"):
        work(stack, csv_job["id"], look=False)
        work(stack, audit_job["id"], limit=500, look=False)
    with recorder.acting_as("GetJobFunction"):
        assert follow(stack, csv_job["id"])["status"] == "succeeded"
    assert recorder.ungranted() == {}
    assert {"StartJobFunction", "RunJobFunction", "GetJobFunction"} <= set(recorder.used)


def _expire_lease(stack, job_id: str) -> None:
    dynamo.update_item(stack.resources["ReportsTable"]["Ref"], {"pk": f"JOB#{job_id}", "sk": "JOB"},
                       "SET lease_until = :past", {":past": 0})  # fmt: skip


def test_a_job_that_cannot_be_queued_is_failed_not_left_queued(stack, monkeypatch):
    # Given a queue that refuses the job's message
    monkeypatch.setenv("CASHEW_JOBS_QUEUE_URL", stack.resources["JobsQueue"]["Ref"] + "-gone")
    get_settings.cache_clear()
    # When an admin starts a job
    answer = start(stack, {"type": "audit"})
    # Then the request fails, and the job it wrote says it failed
    assert answer.status == 500
    table = stack.resources["ReportsTable"]["Ref"]
    unqueued = "the job could not be queued"
    failed = [
        i for i in stack.clients("dynamodb").scan(TableName=table)["Items"]
        if i["pk"]["S"].startswith("JOB#") and i.get("error", {}).get("S") == unqueued
    ]  # fmt: skip
    assert failed and all(i["status"]["S"] == "failed" for i in failed)


def test_a_job_failing_at_its_messages_last_receive_is_failed(stack, day, monkeypatch):
    # Given a job whose every run fails (its file cannot be written)
    job = start(stack, {"type": "transactions_csv", **whole_day(day)}).body
    monkeypatch.setenv("CASHEW_REPORTS_BUCKET", "no-such-bucket")
    get_settings.cache_clear()
    # When its message is received for the fifth time: it comes back
    with pytest.raises(Exception):  # noqa: B017 - whatever S3 raises
        jobs.run(job["id"], lambda: 600_000, receives=jobs.LAST_RECEIVE - 1)
    assert follow(stack, job["id"])["status"] == "running"
    # ... and at its last receive, the job is failed rather than left running
    _expire_lease(stack, job["id"])
    jobs.run(job["id"], lambda: 600_000, receives=jobs.LAST_RECEIVE)
    found = follow(stack, job["id"])
    assert (found["status"], found["error"]) == ("failed", "the job failed too many times")


def test_a_duplicate_message_of_a_held_job_is_dropped(stack, day):
    job = start(stack, {"type": "transactions_csv", **whole_day(day)}).body
    assert job_store.claim(job["id"], "holder") is not None
    jobs.run(job["id"], lambda: 600_000)  # returns: the holder gives the job back
    assert follow(stack, job["id"])["status"] == "running"


def test_a_job_completed_by_a_worker_that_died_before_saying_so_succeeds(stack, day, monkeypatch):
    # Given a CSV job whose worker completes the upload and dies before saving it succeeded
    outcomes_of(stack, day)
    job = start(stack, {"type": "transactions_csv", **whole_day(day)}).body
    real_save = job_store.save

    def dies_at_success(job_id, owner, **changes):
        if changes.get("status") == "succeeded":
            raise RuntimeError("the worker died")
        real_save(job_id, owner, **changes)

    monkeypatch.setattr(job_store, "save", dies_at_success)
    with pytest.raises(RuntimeError):
        jobs.run(job["id"], lambda: 600_000)
    monkeypatch.setattr(job_store, "save", real_save)
    # When its message comes back (the lease run out)
    _expire_lease(stack, job["id"])
    jobs.run(job["id"], lambda: 600_000)
    # Then the job succeeded, with the file the first worker wrote, every row once
    done = follow(stack, job["id"])
    assert (done["status"], done["rows"]) == ("succeeded", 6)
    body, _ = download(done["download_url"])
    assert len(list(csv.reader(io.StringIO(body.decode())))) == 7


def test_a_job_past_its_retention_is_404(stack):
    job = start(stack, {"type": "audit"}).body
    key = {"pk": f"JOB#{job['id']}", "sk": "JOB"}
    dynamo.update_item(stack.resources["ReportsTable"]["Ref"], key, "SET expires_at = :past",
                       {":past": 1})  # fmt: skip
    answer = stack.call("GetJobFunction", "jobs/get_job.json", authorizer=ADMIN,
                        path={"id": job["id"]})  # fmt: skip
    assert (answer.status, answer.body["code"]) == (404, "not_found")
    work(stack, job["id"], limit=500, look=False)  # its message: leave the queue empty
