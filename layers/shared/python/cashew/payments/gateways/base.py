"""The gateway interface every adapter implements, and the retry policy around it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

ChargeStatus = Literal["succeeded", "requires_capture", "processing", "failed"]
FailureCode = Literal["insufficient_funds", "card_declined", "gateway_error", "expired_card"]


class GatewayUnavailableError(Exception):
    """The gateway could not be reached or answered with a server error; safe to retry
    with the same idempotency key."""


@dataclass(frozen=True, slots=True)
class TokenisedCard:
    token: str
    risk_flag: bool


@dataclass(frozen=True, slots=True)
class Charge:
    id: str | None
    status: ChargeStatus
    failure_code: FailureCode | None = None
    failure_message: str | None = None


class Gateway(Protocol):
    def tokenise(self, number: str, exp_month: int, exp_year: int, cvc: str) -> TokenisedCard:
        """Exchange card details for a reusable token (the details are not kept)."""
        ...

    def charge(
        self, token: str, amount: int, currency: str, *, idempotency_key: str, capture: bool
    ) -> Charge:
        """Authorise (and capture, unless `capture` is False). The same idempotency key
        always returns the same charge: asking again is how an unknown outcome is settled."""
        ...


def with_retries(call: Callable[[], Charge], *, attempts: int, base_delay: float = 0.05) -> Charge:
    """Run `call`, retrying GatewayUnavailableError with exponential backoff; after the last
    attempt the charge is failed with `gateway_error`."""
    for attempt in range(attempts):
        try:
            return call()
        except GatewayUnavailableError:
            if attempt + 1 < attempts:
                time.sleep(base_delay * 2**attempt)
    return Charge(
        id=None,
        status="failed",
        failure_code="gateway_error",
        failure_message="the payment gateway is unavailable",
    )
