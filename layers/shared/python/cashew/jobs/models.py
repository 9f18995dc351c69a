"""Job requests and responses."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cashew.ledger.query_params import Time

JobType = Literal["transactions_csv", "audit"]
JobStatus = Literal["queued", "running", "succeeded", "failed"]


class JobRequest(BaseModel):
    """`from` / `to` bound a `transactions_csv` job's range (as the CSV endpoint's do: `to`
    defaults to now, `from` to 30 days before it, at most 366 days); an `audit` takes none."""

    model_config = ConfigDict(extra="forbid")

    type: JobType
    since: Time | None = Field(None, alias="from")
    until: Time | None = Field(None, alias="to")


class AuditVerdict(BaseModel):
    """What an audit job found, in short (the whole `Audit` is its file)."""

    chains_valid: bool
    balances_match: bool
    card_money_explained: bool
    chains: int
    entries: int
    discrepancies: int
    pending: int


class Job(BaseModel):
    """A job and how far it has come (`since` / `until`: a CSV job's range). `progress`
    runs 0..100 (100 once it has succeeded). Once `succeeded`: `download_url`, a link valid
    until `download_expires_at` (each GET gives a fresh one) to the CSV or the audit's JSON;
    `rows` (CSV rows without the header) or `result` (the audit's verdicts and counts).
    Once `failed`: `error`."""

    id: str
    type: JobType
    status: JobStatus
    progress: int = Field(ge=0, le=100)
    created_at: str
    updated_at: str
    created_by: str
    since: str | None = None
    until: str | None = None
    rows: int | None = None
    result: AuditVerdict | None = None
    download_url: str | None = None
    download_expires_at: str | None = None
    error: str | None = None
