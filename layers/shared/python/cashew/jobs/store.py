"""The jobs, in the reports table (pk JOB#<id>, sk JOB), and the lease that lets one worker
at a time run a job.

A worker claims a job's lease before it works on it, and every write it then makes is
conditional on still holding it, so two deliveries of the same message, or a worker that
outlived its lease, can never both write a job's state or its file. A job's state is what it
needs to go on where it stopped: for a CSV export the cursor after the last row written, the
upload and the parts uploaded so far.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from pydantic import BaseModel

from cashew import clock, dynamo
from cashew.config import get_settings
from cashew.jobs.models import Job, JobType

LEASE_SECONDS = 930
"""Longer than the worker may run (RunJobFunction's 900 s), so no worker outlives its lease;
shorter than JobsQueue's visibility timeout (960 s), so a message back from a worker that
died finds the lease expired."""
RETENTION_SECONDS = 7 * 24 * 3600
"""How long a job (and its file: ReportsBucket's lifecycle) is kept."""
_ACTIVE = ("queued", "running")


def _table() -> str:
    return get_settings().reports_table


def _key(job_id: str) -> dict[str, str]:
    return {"pk": f"JOB#{job_id}", "sk": "JOB"}


class Part(TypedDict):
    """An uploaded part of a CSV job's file, as CompleteMultipartUpload lists it."""

    PartNumber: int
    ETag: str


@dataclass(frozen=True, slots=True)
class StoredJob:
    """A job as stored: what the API shows (`job`), and what its worker needs to go on
    (`attempts`: claims since its last checkpoint; the upload, its parts and the cursor after
    the last row written; `file`, once written)."""

    job: Job
    expires_at: int = 0
    attempts: int = 0
    file: str | None = None
    upload_id: str | None = None
    cursor: str | None = None
    parts: tuple[Part, ...] = ()

    @property
    def expired(self) -> bool:
        """Past its retention (DynamoDB's TTL deletes it within a day or two)."""
        return self.expires_at <= clock.epoch()

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> StoredJob:
        return cls(
            job=Job.model_validate({name: item.get(name) for name in Job.model_fields
                                    if name not in ("download_url", "download_expires_at")}),
            expires_at=int(item.get("expires_at", 0)),
            attempts=int(item.get("attempts", 0)),
            file=item.get("file"),
            upload_id=item.get("upload_id"),
            cursor=item.get("cursor"),
            parts=tuple(
                Part(PartNumber=int(p["PartNumber"]), ETag=str(p["ETag"]))
                for p in item.get("parts") or ()
            ),
        )  # fmt: skip


class LeaseLost(Exception):
    """Another worker holds the job now (or it is finished): stop without writing."""


class Leased(Exception):
    """Another worker holds the job's lease: the message is to come back later (its holder
    may die, and then this message is what goes on with the job)."""


def create(
    job_id: str, type_: JobType, created_by: str, since: str | None, until: str | None
) -> StoredJob:
    now = clock.now()
    item = {
        **_key(job_id), "type": type_, "created_by": created_by, "since": since,
        "until": until, "id": job_id, "status": "queued", "progress": 0,
        "created_at": clock.rfc3339(now), "updated_at": clock.rfc3339(now), "attempts": 0,
        "expires_at": int(now.timestamp()) + RETENTION_SECONDS,
    }  # fmt: skip
    dynamo.put_item(_table(), item, condition="attribute_not_exists(pk)")
    return StoredJob.from_item(item)


def get(job_id: str) -> StoredJob | None:
    item = dynamo.get_item(_table(), _key(job_id))
    return StoredJob.from_item(item) if item is not None else None


def claim(job_id: str, owner: str) -> StoredJob | None:
    """Take the job's lease (running it, and counting the attempt); None if it is finished
    or gone; Leased if a worker whose lease has not expired holds it."""
    now = clock.epoch()
    try:
        item = dynamo.update_item(
            _table(),
            _key(job_id),
            "SET lease_owner = :me, lease_until = :until, #status = :running, "
            "updated_at = :at ADD attempts :one",
            {
                ":me": owner,
                ":until": now + LEASE_SECONDS,
                ":running": "running",
                ":at": clock.utcnow_str(),
                ":one": 1,
                ":now": now,
                ":queued": _ACTIVE[0],
            },
            condition="attribute_exists(pk) AND #status IN (:queued, :running) "
            "AND (attribute_not_exists(lease_until) OR lease_until < :now)",
            names={"#status": "status"},
            return_new=True,
        )
    except dynamo.ConditionFailed:
        found = get(job_id)
        if found is not None and found.job.status in _ACTIVE:
            raise Leased(job_id) from None
        return None
    return StoredJob.from_item(item) if item is not None else None


def fail(job_id: str, error: str) -> None:
    """Fail the job, whoever holds it (its last chance is gone: its message's last receive,
    or it could not be queued); a finished job stays as it is."""
    with contextlib.suppress(dynamo.ConditionFailed):
        dynamo.update_item(
            _table(), _key(job_id),
            "SET #status = :failed, #error = :error, updated_at = :at "
            "REMOVE lease_owner, lease_until",
            {":failed": "failed", ":error": error, ":at": clock.utcnow_str(),
             ":queued": _ACTIVE[0], ":running": _ACTIVE[1]},
            condition="attribute_exists(pk) AND #status IN (:queued, :running)",
            names={"#status": "status", "#error": "error"},
        )  # fmt: skip


def save(
    job_id: str, owner: str, *, release: bool, progressed: bool = True, **changes: object
) -> None:
    """Write `changes` if `owner` still holds the lease; with `release`, give the lease up
    too. A checkpoint (`progressed`: work that will not be done again) starts the count of
    attempts again; a mere progress report does not. A model among `changes` is stored as
    its fields."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {":me": owner, ":at": clock.utcnow_str()}
    if progressed:
        values[":zero"] = 0
    sets = ["updated_at = :at", *(["attempts = :zero"] if progressed else [])]
    for index, (name, value) in enumerate(changes.items()):
        names[f"#f{index}"] = name
        values[f":v{index}"] = value.model_dump() if isinstance(value, BaseModel) else value
        sets.append(f"#f{index} = :v{index}")
    expression = "SET " + ", ".join(sets)
    if release:
        expression += " REMOVE lease_owner, lease_until"
    try:
        dynamo.update_item(
            _table(), _key(job_id), expression, values,
            condition="lease_owner = :me", names=names,
        )  # fmt: skip
    except dynamo.ConditionFailed as exc:
        raise LeaseLost(job_id) from exc
