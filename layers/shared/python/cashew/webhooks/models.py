"""Webhook endpoint and delivery requests and responses (API.md "Webhooks to services")."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# The detail-types of the payments bus (cashew.outcomes), and the payout ones API.md names.
EVENT_TYPES = (
    "payment.succeeded", "payment.failed", "payment.captured", "payment.canceled",
    "refund.succeeded", "dispute.opened", "dispute.won", "dispute.lost",
    "payout.paid", "payout.failed",
)  # fmt: skip
EventType = Literal[
    "payment.succeeded", "payment.failed", "payment.captured", "payment.canceled",
    "refund.succeeded", "dispute.opened", "dispute.won", "dispute.lost",
    "payout.paid", "payout.failed", "*",
]  # fmt: skip
EndpointStatus = Literal["enabled", "disabled"]
DeliveryStatus = Literal["pending", "succeeded", "failed"]


def _known_events(events: list[EventType]) -> list[EventType]:
    if events == ["*"]:
        return events
    unknown = [e for e in events if e not in EVENT_TYPES]
    if "*" in events or unknown:
        raise ValueError(f'must be ["*"] or event types of the bus: {", ".join(EVENT_TYPES)}')
    if len(set(events)) != len(events):
        raise ValueError("must not repeat an event type")
    return events


Events = Annotated[
    list[EventType],
    Field(min_length=1, max_length=len(EVENT_TYPES)),
    AfterValidator(_known_events),
]
Description = Annotated[str, Field(min_length=1, max_length=500)]


class CreateEndpointRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, examples=["https://hooks.example.com/cashew"])
    events: Events = Field(examples=[["payment.succeeded", "refund.succeeded"]])
    description: Description | None = None


class UpdateEndpointRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: Events | None = None
    description: Description | None = None
    status: EndpointStatus | None = None


class Endpoint(BaseModel):
    id: str
    url: str
    events: list[str]
    description: str | None
    status: EndpointStatus
    created_at: str


class CreatedEndpoint(Endpoint):
    """The endpoint as its creation answers it: the one time its secret is shown."""

    secret: str


class RotatedSecret(BaseModel):
    secret: str


class EndpointList(BaseModel):
    data: list[Endpoint]
    has_more: bool
    next_cursor: str | None


class Delivery(BaseModel):
    id: str
    event_id: str
    event_type: str
    sequence: int
    attempts: int
    status: DeliveryStatus
    last_response_status: int | None
    last_error: str | None
    next_attempt_at: str | None
    created_at: str


class DeliveryList(BaseModel):
    data: list[Delivery]
    has_more: bool
    next_cursor: str | None


class RetryAccepted(BaseModel):
    id: str
    status: DeliveryStatus
