"""Dispute requests and responses."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

DisputeReason = Literal["fraudulent", "duplicate", "product_not_received", "other"]
DisputeStatus = Literal["open", "won", "lost"]
DisputeOutcome = Literal["won", "lost"]


class DisputeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: DisputeReason
    details: str | None = Field(None, min_length=1, max_length=2000)


class ResolveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: DisputeOutcome
    note: str | None = Field(None, min_length=1, max_length=2000)


class Dispute(BaseModel):
    """A dispute as its payer and payee see it. `amount` is what was in dispute (the
    captured amount); `refund_id` is the refund a won dispute made (None if the payment had
    already been refunded in full)."""

    id: str
    transaction_id: str
    payment_id: str
    payer_id: str
    payee_id: str
    status: DisputeStatus
    reason: DisputeReason
    details: str | None
    amount: int
    currency: str
    refund_id: str | None = None
    created_at: str
    resolved_at: str | None = None


class AdminDispute(Dispute):
    """What an admin also sees: who resolved it and their note."""

    resolved_by: str | None = None
    note: str | None = None


class DisputeList(BaseModel):
    data: list[Dispute]
    has_more: bool
    next_cursor: str | None


class AdminDisputeList(BaseModel):
    data: list[AdminDispute]
    has_more: bool
    next_cursor: str | None
