"""Request and response models of the payout endpoints."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from cashew.money import Amount, Currency
from cashew.payments.models import DEFAULT_METHOD, PaymentMethodId, Risk, StrictRequest

PayoutStatus = Literal["pending", "paid", "failed"]


class PayoutRequest(StrictRequest):
    amount: Amount
    currency: Currency
    payment_method_id: PaymentMethodId | None = Field(default=None, description=DEFAULT_METHOD)


class PayoutResponse(BaseModel):
    """The payout object of the contract."""

    id: str
    amount: int
    currency: str
    payment_method_id: str
    status: PayoutStatus
    failure_code: str | None
    failure_message: str | None
    risk: Risk
    created_at: str
    updated_at: str


class PayoutList(BaseModel):
    data: list[PayoutResponse]
    has_more: bool
    next_cursor: str | None
