"""Starting a job, showing it, and running it.

A job runs in RunJobFunction, one message of JobsQueue at a time. A CSV export writes its
rows to one S3 object as a multipart upload, a part of `PART_BYTES` at a time, and saves
where it is after each part; when its invocation nears its end it gives the job back to the
queue, and the next invocation goes on from the last part saved. So a range completes
whatever its size, up to the parts the job's item can list (about 6,000 of 8 MiB: 48 GB).
The audit sweeps the users a page at a time (`reports.audit_users`), saving where it is and
what it found after each page, and goes on the same way across invocations: whatever the
size of the log, it holds one page of users and what is wrong, then writes its result as
JSON.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, PrivateAttr

from cashew import aws, clock, ids, reports
from cashew.accounts import face as accounts
from cashew.config import get_settings
from cashew.errors import InvalidRequestError, NotFoundError
from cashew.identity import Caller
from cashew.jobs import store
from cashew.jobs.models import AuditVerdict, Job, JobRequest
from cashew.ledger import face as ledger
from cashew.ledger import service as ledger_service
from cashew.observability import logger
from cashew.payments import face as payments
from cashew.payouts import face as payouts

PART_BYTES = 8 * 1024 * 1024
"""One part of a CSV upload (S3 wants at least 5 MiB for every part but the last)."""
PAGE = reports.CSV_MAX_PAGE
MARGIN_MS = 120_000
"""Time an invocation keeps in hand: it starts no part with less left."""
MAX_ATTEMPTS = 5
"""Claims of a job without a checkpoint between them before it is failed."""
LINK_SECONDS = 900
"""How long a download link is valid."""
_FILES = {"transactions_csv": ("transactions.csv", "text/csv; charset=utf-8"),
          "audit": ("audit.json", "application/json")}  # fmt: skip


# -------------------------------------------------------------------------- the API


def start(caller: Caller, request: JobRequest) -> Job:
    """Create the job and queue it (202): `progress` 0, `status` queued."""
    since = until = None
    if request.type == "audit":
        if request.since is not None or request.until is not None:
            raise InvalidRequestError(
                "an audit covers the whole log: it takes no from or to",
                errors=[{"field": "from" if request.since else "to", "message": "not allowed"}],
            )
    else:
        filters = ledger_service.Filters(since=request.since, until=request.until)
        first, last = ledger_service.date_range(filters.since, filters.until)
        since, until = clock.rfc3339(first), clock.rfc3339(last)
    stored = store.create(ids.new_id("job"), request.type, caller.user_id, since, until)
    try:
        _enqueue(stored.job.id)
    except Exception:
        store.fail(stored.job.id, "the job could not be queued")  # never left queued forever
        raise
    return stored.job


def get(job_id: str) -> Job:
    """The job (404 for an id no job has, or one past its retention that DynamoDB's TTL has
    not deleted yet), with a fresh download link once it succeeded."""
    found = store.get(job_id) if ids.PATTERNS["job"].fullmatch(job_id) else None
    if found is None or found.expired:
        raise NotFoundError("job not found")
    job = found.job
    if job.status == "succeeded" and found.file:
        name, content_type = _FILES[job.type]
        url = aws.s3().generate_presigned_url(
            "get_object",
            Params={
                "Bucket": _bucket(), "Key": found.file,
                "ResponseContentDisposition": f'attachment; filename="{name}"',
                "ResponseContentType": content_type,
            },
            ExpiresIn=LINK_SECONDS,
        )  # fmt: skip
        expires = clock.rfc3339(clock.now() + timedelta(seconds=LINK_SECONDS))
        job = job.model_copy(update={"download_url": url, "download_expires_at": expires})
    return job


def _bucket() -> str:
    bucket = get_settings().reports_bucket
    if not bucket:
        raise RuntimeError("CASHEW_REPORTS_BUCKET is not set for this function")
    return bucket


def _enqueue(job_id: str) -> None:
    queue = get_settings().jobs_queue_url
    if not queue:
        raise RuntimeError("CASHEW_JOBS_QUEUE_URL is not set for this function")
    aws.sqs().send_message(QueueUrl=queue, MessageBody=json.dumps({"job_id": job_id}))


# ----------------------------------------------------------------------- the worker


LAST_RECEIVE = 6
"""JobsQueue's maxReceiveCount: after this receive, the message goes to the dead-letter queue."""


def run(job_id: str, remaining_ms: Callable[[], int], receives: int = 1) -> None:
    """Work on the job while time remains, then give it back to the queue if it is not
    finished. A finished job is left alone, and so is one another worker holds (its holder
    gives it back; if it dies, its own message comes back and goes on with the job). An
    error raises, so the message comes back, unless this is its last receive: then the job
    is failed, rather than left running with no message to go on."""
    try:
        _run(job_id, remaining_ms)
    except Exception:
        if receives < LAST_RECEIVE:
            raise
        logger.exception("job failed at its message's last receive", extra={"job_id": job_id})
        store.fail(job_id, "the job failed too many times")


def _run(job_id: str, remaining_ms: Callable[[], int]) -> None:
    owner = uuid.uuid4().hex
    try:
        stored = store.claim(job_id, owner)
    except store.Leased:
        logger.info("job held by another worker", extra={"job_id": job_id})
        return
    if stored is None:
        logger.info("job finished or gone", extra={"job_id": job_id})
        return
    if stored.attempts > MAX_ATTEMPTS:
        _abandon(stored)
        store.save(job_id, owner, release=True, status="failed",
                   error="the job stopped making progress")  # fmt: skip
        return
    try:
        run = _run_audit if stored.job.type == "audit" else _run_csv
        if run(stored, owner, remaining_ms):
            return
    except store.LeaseLost:
        logger.warning("job lease lost; another worker goes on", extra={"job_id": job_id})
        return
    store.save(job_id, owner, release=True, progressed=False)
    _enqueue(job_id)


def _abandon(stored: store.StoredJob) -> None:
    """Abort a failed job's upload (ReportsBucket's lifecycle would, a day later)."""
    if stored.upload_id is not None:
        with contextlib.suppress(Exception):  # best effort: the lifecycle rule is the backstop
            aws.s3().abort_multipart_upload(
                Bucket=_bucket(), Key=_csv_key(stored.job.id), UploadId=stored.upload_id
            )


def _csv_key(job_id: str) -> str:
    return f"jobs/{job_id}/transactions.csv"


def _run_csv(stored: store.StoredJob, owner: str, remaining_ms: Callable[[], int]) -> bool:
    """Parts until the range is written (then True) or the time runs short (False)."""
    job, s3, bucket = stored.job, aws.s3(), _bucket()
    key = _csv_key(job.id)
    upload_id = stored.upload_id
    if upload_id is None:
        upload_id = s3.create_multipart_upload(
            Bucket=bucket, Key=key, ContentType=_FILES["transactions_csv"][1]
        )["UploadId"]
        store.save(job.id, owner, release=False, upload_id=upload_id, parts=[])
    since, until = _at(job.since or ""), _at(job.until or "")
    filters = ledger_service.Filters(since=since, until=until)
    cursor, parts, rows = stored.cursor, list(stored.parts), job.rows or 0
    while True:
        out = io.StringIO()  # every cell is ASCII (ids, codes, numbers, times): chars = bytes
        writer = csv.writer(out, lineterminator="\r\n")
        if not parts:
            writer.writerow(reports.CSV_COLUMNS)
        oldest = None
        while out.tell() < PART_BYTES:
            entries, cursor = reports.csv_entries(filters, PAGE, cursor)
            reports.write_rows(writer, entries)
            rows += len(entries)
            oldest = entries[-1].occurred_at if entries else oldest
            if cursor is None:
                break
        number = len(parts) + 1
        try:
            etag = s3.upload_part(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                Body=out.getvalue().encode(),
            )["ETag"]  # fmt: skip
        except s3.exceptions.NoSuchUpload:
            if not _written(key):
                raise
            # completed by a worker that died before saying so: this read was its last part
            store.save(job.id, owner, release=True, status="succeeded", progress=100,
                       rows=rows, file=key, cursor=None)  # fmt: skip
            return True
        parts.append(store.Part(PartNumber=number, ETag=etag))
        if cursor is None:
            s3.complete_multipart_upload(
                Bucket=bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={
                    "Parts": [{"PartNumber": p["PartNumber"], "ETag": p["ETag"]} for p in parts]
                },
            )
            store.save(job.id, owner, release=True, status="succeeded", progress=100,
                       rows=rows, file=key, parts=parts, cursor=None)  # fmt: skip
            return True
        store.save(job.id, owner, release=False, cursor=cursor, parts=parts, rows=rows,
                   progress=_progress(since, until, oldest))  # fmt: skip
        if remaining_ms() < MARGIN_MS:
            return False


def _written(key: str) -> bool:
    s3 = aws.s3()
    try:
        s3.head_object(Bucket=_bucket(), Key=key)
    except s3.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def _progress(since: datetime, until: datetime, oldest: str | None) -> int:
    """How much of the range (read newest first) lies after the oldest row written: 0..99."""
    if oldest is None or until <= since:
        return 0
    covered = (until - _at(oldest)) / (until - since)
    return max(0, min(99, int(covered * 100)))


AUDIT_SEGMENTS = 16
"""Each table the audit sweeps, it sweeps in this many segments, one after the other."""
AUDIT_PAGE = 200
"""Items a page of the sweep reads: the users audited between two checkpoints are at most
this many."""
AUDIT_BATCH = 25
"""Users audited together (`reports.audit_users`)."""
AUDIT_THREADS = 4
"""Batches of a page audited at once: each user's reads are one request after another, so
threads overlap their waits for DynamoDB (the GIL still runs their CPU one at a time)."""
_AUDITORS = ThreadPoolExecutor(AUDIT_THREADS, thread_name_prefix="audit")


@dataclass(frozen=True, slots=True)
class _Page:
    """A page of one of the sweep's tables: the users to audit (those with a profile),
    the users its items name (audited too if they have no profile: a balance, a chain or
    a record of someone who does not exist moves money no profile explains), what its
    records show wrong on their own, and where the next page starts."""

    users: list[str]
    named: list[str]
    problems: list[reports.Discrepancy]
    next_start: str | None


def _accounts_page(segment: int, start: str | None) -> _Page:
    page = accounts.users_page(segment, AUDIT_SEGMENTS, start, AUDIT_PAGE)
    return _Page(page.profiles, page.balances, [], page.next_start)


def _log_page(segment: int, start: str | None) -> _Page:
    owners, next_start = ledger.owners_page(segment, AUDIT_SEGMENTS, start, AUDIT_PAGE)
    return _Page([], owners, [], next_start)


def _payments_page(segment: int, start: str | None) -> _Page:
    records, next_start = payments.records_page(segment, AUDIT_SEGMENTS, start, AUDIT_PAGE)
    named = [
        party
        for record in records
        if not isinstance(record, payments.Unreadable)
        for party in reports.parties(record)
        if party is not None
    ]
    return _Page([], named, reports.record_problems(records), next_start)


def _payouts_page(segment: int, start: str | None) -> _Page:
    owners, next_start = payouts.owners_page(segment, AUDIT_SEGMENTS, start, AUDIT_PAGE)
    return _Page([], owners, [], next_start)


_PHASES = (_accounts_page, _log_page, _payments_page, _payouts_page)
"""The tables the audit sweeps, in turn: every user with a profile, then anyone a balance,
a chain, a payment or refund, or a payout names who has none."""


class _Found(BaseModel):
    """What one page of the sweep found: written beside the checkpoint as its own object
    (`found-<n>.json`), so that no checkpoint repeats what the ones before it found."""

    discrepancies: list[reports.Discrepancy] = []
    pending: list[reports.PendingOutcome] = []


class _Sweep(BaseModel):
    """Where an audit job's sweep is and what it has counted: saved to S3 at each
    checkpoint (`jobs/<id>/audit-sweep/state-<n>-<owner>.json`, named by the job's
    `cursor`; the one before is deleted). What it found is in the checkpoints' `found-<n>`
    objects, read once, at the end: a checkpoint holds counts and the users with no profile
    audited so far, whatever the log's size and whatever is wrong."""

    phase: int = 0
    segment: int = 0
    start: str | None = None
    checkpoint: int = 0
    chains: int = 0
    entries: int = 0
    found: list[int] = []  # the checkpoints that found something
    unreadable: list[str] = []  # records named unreadable (each once)
    orphans: list[str] = []  # users with no profile whom the sweep audited already

    _unreadable: set[str] = PrivateAttr(default_factory=set)
    _orphans: set[str] = PrivateAttr(default_factory=set)

    def model_post_init(self, context: Any, /) -> None:
        self._unreadable, self._orphans = set(self.unreadable), set(self.orphans)

    @property
    def done(self) -> bool:
        return self.phase >= len(_PHASES)

    @property
    def progress(self) -> int:
        swept = self.phase * AUDIT_SEGMENTS + self.segment
        return min(99, swept * 100 // (len(_PHASES) * AUDIT_SEGMENTS))

    def is_orphan(self, user_id: str) -> bool:
        return user_id in self._orphans

    def add_orphan(self, user_id: str) -> None:
        self._orphans.add(user_id)
        self.orphans.append(user_id)

    def went_on(self, next_start: str | None) -> None:
        """Past a page: to the next, or the next segment, or the next table."""
        self.start = next_start
        if next_start is None:
            self.segment += 1
            if self.segment == AUDIT_SEGMENTS:
                self.phase, self.segment = self.phase + 1, 0

    def add(self, found: reports.UsersAudit, into: _Found) -> None:
        self.chains += found.chains
        self.entries += found.entries
        for discrepancy in found.discrepancies:
            if discrepancy.kind == "record":  # an item two reads share: named once
                if (discrepancy.payment_id or "") in self._unreadable:
                    continue
                self._unreadable.add(discrepancy.payment_id or "")
                self.unreadable.append(discrepancy.payment_id or "")
            into.discrepancies.append(discrepancy)
        into.pending.extend(found.pending)


def _audit_of(sweep: _Sweep, parts: list[_Found]) -> reports.Audit:
    found = [d for part in parts for d in part.discrepancies]
    return reports.Audit(
        chains_valid=not any(d.kind == "chain" for d in found),
        balances_match=not any(d.kind in reports.DRIFT for d in found),
        card_money_explained=not any(d.kind in reports.CARD for d in found),
        chains=sweep.chains,
        entries=sweep.entries,
        discrepancies=found,
        pending=[p for part in parts for p in part.pending],
    )


def _sweep_prefix(job_id: str) -> str:
    return f"jobs/{job_id}/audit-sweep/"


def _found_key(job_id: str, checkpoint: int) -> str:
    """A page's findings: named by its checkpoint alone, so that a stale worker's copy of
    the same page (the same reads, from the same checkpoint) is the same object."""
    return f"{_sweep_prefix(job_id)}found-{checkpoint:06d}.json"


def _load_sweep(stored: store.StoredJob) -> _Sweep:
    if stored.cursor is None:
        return _Sweep()
    if not stored.cursor.startswith(_sweep_prefix(stored.job.id)):  # only this job's own
        raise RuntimeError(f"job {stored.job.id} names a checkpoint not its own")
    return _Sweep.model_validate_json(_s3_body(stored.cursor))


def _s3_body(key: str) -> bytes:
    body: bytes = aws.s3().get_object(Bucket=_bucket(), Key=key)["Body"].read()
    return body


def _run_audit(stored: store.StoredJob, owner: str, remaining_ms: Callable[[], int]) -> bool:
    """The audit, user by user (`reports.audit_users`): a page of a table at a time (the
    accounts' profiles and balances, then the log, the payments and the payouts, each for
    anyone they name who has no profile), a checkpoint after each, until every table is
    swept (then True, the result written) or the time runs short (False)."""
    job_id, sweep, s3 = stored.job.id, _load_sweep(stored), aws.s3()
    known: dict[str, bool] = {}

    def exists(user_id: str) -> bool:
        if user_id not in known:
            known[user_id] = accounts.has_profile(user_id)
        return known[user_id]

    while not sweep.done:
        page = _PHASES[sweep.phase](sweep.segment, sweep.start)
        users = list(dict.fromkeys(page.users))
        known.update(dict.fromkeys(users, True))
        for user_id in dict.fromkeys(page.named):
            if user_id not in users and not sweep.is_orphan(user_id) and not exists(user_id):
                sweep.add_orphan(user_id)  # audited once, whichever page names it
                users.append(user_id)
        found = _Found()
        sweep.add(reports.UsersAudit(discrepancies=page.problems), found)
        batches = [
            users[first : first + AUDIT_BATCH] for first in range(0, len(users), AUDIT_BATCH)
        ]
        for audited in _AUDITORS.map(lambda batch: reports.audit_users(batch, exists), batches):
            sweep.add(audited, found)  # in the page's order, whichever batch finished first
        sweep.went_on(page.next_start)
        sweep.checkpoint += 1
        if found.discrepancies or found.pending:
            sweep.found.append(sweep.checkpoint)
            s3.put_object(Bucket=_bucket(), Key=_found_key(job_id, sweep.checkpoint),
                          Body=found.model_dump_json().encode(),
                          ContentType="application/json")  # fmt: skip
        key = f"{_sweep_prefix(job_id)}state-{sweep.checkpoint:06d}-{owner}.json"
        s3.put_object(Bucket=_bucket(), Key=key, Body=sweep.model_dump_json().encode(),
                      ContentType="application/json")  # fmt: skip
        before = stored.cursor
        store.save(job_id, owner, release=False, cursor=key, progress=sweep.progress)
        stored = replace(stored, cursor=key)
        if before is not None:  # superseded: the job names the new one
            s3.delete_object(Bucket=_bucket(), Key=before)
        if not sweep.done and remaining_ms() < MARGIN_MS:
            return False
    parts = [_Found.model_validate_json(_s3_body(_found_key(job_id, n))) for n in sweep.found]
    result = _audit_of(sweep, parts)
    key = f"jobs/{job_id}/audit.json"
    s3.put_object(
        Bucket=_bucket(), Key=key, Body=result.model_dump_json().encode(),
        ContentType=_FILES["audit"][1],
    )  # fmt: skip
    verdict = AuditVerdict(
        chains_valid=result.chains_valid, balances_match=result.balances_match,
        card_money_explained=result.card_money_explained, chains=result.chains,
        entries=result.entries, discrepancies=len(result.discrepancies),
        pending=len(result.pending),
    )  # fmt: skip
    store.save(job_id, owner, release=True, status="succeeded", progress=100, result=verdict,
               file=key, cursor=None)  # fmt: skip
    if stored.cursor is not None:
        s3.delete_object(Bucket=_bucket(), Key=stored.cursor)
    return True


def _at(moment: str) -> datetime:
    return clock.to_utc(datetime.fromisoformat(moment))
