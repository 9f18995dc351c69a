"""The gateway interface every adapter implements, and the retry policy around it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

ChargeStatus = Literal["succeeded", "requires_capture", "processing", "failed"]
FailureCode = Literal["insufficient_funds", "card_declined", "gateway_error", "expired_card"]


class GatewayUnavailableError(Exception):
    """The gateway did not process the request (refused, unreachable, or a server error
    before processing); safe to retry with the same idempotency key."""


class GatewayOutcomeUnknownError(Exception):
    """The request may or may not have been processed (e.g. a timeout after it was sent).
    Only asking again with the same idempotency key settles it."""


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
    """Run `call`, retrying with exponential backoff. When every attempt was refused the
    charge is failed with `gateway_error`; when the last answer was unknown, the
    GatewayOutcomeUnknownError propagates: the charge must not be recorded as failed."""
    unknown: GatewayOutcomeUnknownError | None = None
    for attempt in range(attempts):
        try:
            return call()
        except GatewayUnavailableError:
            unknown = None
        except GatewayOutcomeUnknownError as exc:
            unknown = exc
        if attempt + 1 < attempts:
            time.sleep(base_delay * 2**attempt)
    if unknown is not None:
        raise unknown
    return Charge(
        id=None,
        status="failed",
        failure_code="gateway_error",
        failure_message="the payment gateway is unavailable",
    )
