"""The outcome message (payments -> queue -> log) and the log entry."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

Direction = Literal["credit", "debit"]


class Outcome(BaseModel):
    """One outcome of one payment, as published to the queue. `outcome_id` is stable, so a
    redelivered or republished outcome is recognised."""

    model_config = ConfigDict(extra="forbid")

    outcome_id: str
    payment_id: str
    type: str
    status: str
    amount: int
    currency: str
    payer_id: str
    payee_id: str
    failure_code: str | None = None
    occurred_at: str


class Entry(BaseModel):
    id: str
    payment_id: str
    user_id: str
    type: str
    direction: Direction
    amount: int
    currency: str
    status: str
    failure_code: str | None = None
    occurred_at: str
    seq: int
    prev_hash: str
    hash: str


class EntryList(BaseModel):
    data: list[Entry]
    has_more: bool
    next_cursor: str | None
