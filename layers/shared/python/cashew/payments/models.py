"""Request and response models of the payment endpoints, and the payment record."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from cashew.money import Amount, Currency

PaymentStatus = Literal[
    "succeeded", "requires_capture", "requires_action", "processing", "failed", "canceled"
]
PaymentType = Literal["top_up", "payment"]
RiskLevel = Literal["normal", "elevated", "blocked"]

UserId = Annotated[str, StringConstraints(pattern=r"^usr_[0-9A-Z]{26}$")]
PaymentMethodId = Annotated[str, StringConstraints(pattern=r"^pm_[0-9A-Z]{26}$")]


class StrictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")


DEFAULT_METHOD = "omitted: the caller's default payment method"


class TopUpRequest(StrictRequest):
    amount: Amount
    currency: Currency
    payment_method_id: PaymentMethodId | None = Field(default=None, description=DEFAULT_METHOD)


class BalanceSource(StrictRequest):
    type: Literal["balance"]


class CardSource(StrictRequest):
    type: Literal["card"]
    payment_method_id: PaymentMethodId | None = Field(default=None, description=DEFAULT_METHOD)


class PaymentRequest(StrictRequest):
    amount: Amount
    currency: Currency
    payee_id: UserId
    source: Annotated[BalanceSource | CardSource, Field(discriminator="type")]
    description: Annotated[str, StringConstraints(max_length=500)] | None = None
    capture: StrictBool = True


class Risk(BaseModel):
    score: int = Field(ge=0, le=100)
    level: RiskLevel
    rules: list[str] | None = Field(
        default=None,
        exclude_if=lambda rules: rules is None,
        description="The screening rules that fired: only in what an admin reads.",
    )


class NextAction(BaseModel):
    """What the card holder must do before a `requires_action` payment can go on: open `url`
    (3-D Secure: the sandbox's challenge page locally, the issuer's via Stripe)."""

    type: Literal["redirect_to_url"]
    url: str


class PaymentResponse(BaseModel):
    """The payment object of the contract (also the record stored in the payments table,
    plus `fired_rules`, which only admins see)."""

    id: str
    type: PaymentType
    status: PaymentStatus
    amount: int
    currency: str
    payer_id: str
    payee_id: str
    source: dict[str, str]
    amount_captured: int
    amount_refunded: int
    failure_code: str | None
    failure_message: str | None
    risk: Risk
    description: str | None
    next_action: NextAction | None = Field(
        default=None, description="null except in requires_action: where to authenticate"
    )
    cancellation_reason: Literal["expired"] | None = Field(
        default=None,
        description="Why a `canceled` payment was canceled: `expired` for an authorisation "
        "reconciliation voided after CASHEW_AUTHORIZATION_TTL; null otherwise.",
    )
    created_at: str
    updated_at: str


RefundStatus = Literal["succeeded", "pending", "failed"]
RefundReason = Literal["requested_by_customer", "duplicate", "fraudulent", "dispute_won", "other"]


class CaptureRequest(StrictRequest):
    amount: Amount | None = None


class RefundRequest(StrictRequest):
    amount: Amount | None = None
    reason: RefundReason | None = None


class RefundResponse(BaseModel):
    id: str
    payment_id: str
    amount: int
    currency: str
    status: RefundStatus
    reason: str | None
    created_at: str


class PaymentList(BaseModel):
    data: list[PaymentResponse]
    has_more: bool
    next_cursor: str | None


class RefundList(BaseModel):
    data: list[RefundResponse]
    has_more: bool
    next_cursor: str | None


class WebhookReceipt(BaseModel):
    """The answer to the gateway: the event was accepted (handled, or deliberately ignored)."""

    received: bool
