"""The gateway interface every adapter implements, its webhook signature, and the retry policy.

An adapter is an outbound port: it turns our calls (tokenise, authorise, capture, void,
refund, payout) into the gateway's, and the gateway's signed webhooks into `WebhookEvent`s
(and `PayoutEvent`s, `CardUpdate`s). Two
exceptions tell the caller what it may do after a failure:

- `GatewayUnavailableError`: the request was definitely not processed; retry it.
- `GatewayOutcomeUnknownError`: it may have been processed (e.g. a timeout after it was
  sent); only asking again with the same idempotency key settles it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, overload

ChargeStatus = Literal[
    "succeeded", "requires_capture", "requires_action", "processing", "failed", "canceled"
]
FailureCode = Literal[
    "insufficient_funds", "card_declined", "gateway_error", "expired_card", "authentication_failed"
]
RefundStatus = Literal["succeeded", "pending", "failed"]
PayoutStatus = Literal["paid", "pending", "failed"]

SIGNATURE_HEADER = "Gateway-Signature"
WEBHOOK_TOLERANCE = 300
"""Seconds a webhook's timestamp may differ from now, either way (replay window)."""


class GatewayUnavailableError(Exception):
    """The gateway did not process the request (refused, unreachable, or a server error
    before processing); safe to retry with the same idempotency key."""


class GatewayOutcomeUnknownError(Exception):
    """The request may or may not have been processed (e.g. a timeout after it was sent).
    Only asking again with the same idempotency key settles it."""


class CardRejectedError(ValueError):
    """The gateway refused the card details when tokenising (e.g. an invalid number)."""

    def __init__(self, code: FailureCode, message: str) -> None:
        super().__init__(message)
        self.code: FailureCode = code


class TokenRejectedError(ValueError):
    """A card token the gateway does not know (`unknown`: never issued, forged, edited, not a
    card) or that is attached already (`attached`: to a customer, or to a payment method)."""

    def __init__(self, reason: Literal["unknown", "attached"], message: str) -> None:
        super().__init__(message)
        self.reason: Literal["unknown", "attached"] = reason


class WebhookError(Exception):
    """A webhook that must be refused (400): see the two subclasses."""


class WebhookSignatureError(WebhookError):
    """The signature header is missing, malformed, wrong, or outside the time tolerance."""


class WebhookPayloadError(WebhookError):
    """The signature is valid but the body is not an event this gateway sends."""


@dataclass(frozen=True, slots=True)
class TokenisedCard:
    token: str
    risk_flag: bool


@dataclass(frozen=True, slots=True)
class AttachedCard:
    """A card the client tokenised at the gateway itself (Stripe.js, the sandbox's tokens
    endpoint), as the gateway describes it: `token` is what charges it (kept sealed), the
    rest is what Cashew shows. `fingerprint` is the gateway's own (same card, same value)."""

    token: str
    risk_flag: bool
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str

    def __repr__(self) -> str:  # never shows the token
        return f"AttachedCard(brand={self.brand!r}, last4={self.last4!r}, ...)"


@dataclass(frozen=True, slots=True)
class CardUpdate:
    """A gateway's card-update event (Stripe `payment_method.automatically_updated`): the
    card behind `token` has a new expiry and last4 (the issuer replaced it)."""

    id: str
    type: str
    token: str
    last4: str
    exp_month: int
    exp_year: int
    brand: str | None = None

    def __repr__(self) -> str:  # never shows the token
        return f"CardUpdate(id={self.id!r}, type={self.type!r}, ...)"


@dataclass(frozen=True, slots=True)
class Charge:
    """A charge (authorisation) at the gateway. `id` is None only when the gateway never
    issued one (e.g. it was unreachable on every attempt). `action_url` is where the card
    holder authenticates a `requires_action` charge (3-D Secure); None otherwise."""

    id: str | None
    status: ChargeStatus
    failure_code: FailureCode | None = None
    failure_message: str | None = None
    amount_captured: int | None = None
    action_url: str | None = None


@dataclass(frozen=True, slots=True)
class GatewayRefund:
    id: str | None
    status: RefundStatus
    failure_code: str | None = None


@dataclass(frozen=True, slots=True)
class GatewayPayout:
    """A payout (push to card) at the gateway. `id` is None only when the gateway never
    issued one (it was unreachable on every attempt)."""

    id: str | None
    status: PayoutStatus
    failure_code: FailureCode | None = None
    failure_message: str | None = None


GATEWAY_ERROR_PAYOUT = GatewayPayout(
    id=None,
    status="failed",
    failure_code="gateway_error",
    failure_message="the payment gateway is unavailable",
)


@dataclass(frozen=True, slots=True)
class PayoutEvent:
    """A verified payout outcome sent by the gateway. `payout_id` is ours (from the metadata
    given to `payout`); None when the gateway's payout did not carry one."""

    id: str
    gateway_payout_id: str
    payout_id: str | None
    status: Literal["paid", "failed"]
    failure_code: FailureCode | None = None
    amount: int | None = None
    currency: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified charge outcome sent by the gateway. `payment_id` is ours (from the
    metadata given to `authorise`); None when the gateway's charge did not carry one."""

    id: str
    type: str
    charge_id: str
    payment_id: str | None
    status: ChargeStatus
    failure_code: FailureCode | None = None
    amount_captured: int | None = None
    currency: str | None = None
    """The charge's currency (ISO 4217, upper case) when the event carries one."""


class Gateway(Protocol):
    signature_header: str
    """The HTTP header carrying the webhook signature (`Gateway-Signature`, or Stripe's)."""

    def tokenise(self, number: str, exp_month: int, exp_year: int, cvc: str) -> TokenisedCard:
        """Exchange card details for a reusable token (the details are not kept)."""
        ...

    def attach_token(self, token: str) -> AttachedCard:
        """The card behind a token the client got from the gateway directly (so the number
        never reached Cashew), with its details. Raises TokenRejectedError for a token the
        gateway does not know or that is attached already."""
        ...

    def authorise(
        self,
        token: str,
        amount: int,
        currency: str,
        *,
        idempotency_key: str,
        capture: bool,
        metadata: dict[str, str],
    ) -> Charge:
        """Authorise `amount` on the card (and capture it at once when `capture` is True).
        The same idempotency key always returns the same charge: asking again is how an
        unknown outcome is settled. `metadata` (our `payment_id`) comes back in webhooks."""
        ...

    def capture(self, charge_id: str, amount: int, *, idempotency_key: str) -> Charge:
        """Capture `amount` (at most the authorised amount) of an authorised charge; the
        rest of the authorisation is released."""
        ...

    def void(self, charge_id: str, *, idempotency_key: str) -> Charge:
        """Release an authorisation that was not captured (status `canceled`)."""
        ...

    def refund(self, charge_id: str, amount: int, *, idempotency_key: str) -> GatewayRefund:
        """Refund `amount` of a captured charge back to the card."""
        ...

    def retrieve_charge(self, charge_id: str) -> Charge:
        """The charge as the gateway has it now: asking only, it never acts. How
        reconciliation settles a `processing` charge whose webhook never came."""
        ...

    def payout(
        self,
        token: str,
        amount: int,
        currency: str,
        *,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> GatewayPayout:
        """Push `amount` to the card behind `token`. The same idempotency key always returns
        the same payout (asking again settles an unknown outcome); `metadata` (our
        `payout_id`) comes back in webhooks. `pending`: the gateway answers by webhook."""
        ...

    def parse_webhook(
        self, payload: bytes, signature_header: str | None, now: int
    ) -> WebhookEvent | CardUpdate | PayoutEvent | None:
        """Verify the raw body against its signature header and return the charge outcome
        or card update it reports; None for a verified event that reports neither (ignore it).
        Raises WebhookSignatureError (bad, missing, stale) or WebhookPayloadError."""
        ...


# --- webhook signatures ---------------------------------------------------------------------


def card_brand(number: str) -> str:
    """The card network by its number's prefix (a card number's own fact: the sandbox's and
    Cashew's `accounts.cards.brand`)."""
    if number.startswith("4"):
        return "visa"
    prefix2, prefix4 = int(number[:2]), int(number[:4])
    if 51 <= prefix2 <= 55 or 2221 <= prefix4 <= 2720:
        return "mastercard"
    if prefix2 in (34, 37):
        return "amex"
    return "unknown"


def _hmac(payload: bytes, secret: str, t: int) -> str:
    signed = str(t).encode() + b"." + payload
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign_webhook(payload: bytes, secret: str, t: int) -> str:
    """The `Gateway-Signature` header value for `payload` sent at unix time `t`."""
    return f"t={t},v1={_hmac(payload, secret, t)}"


def verify_signature(
    payload: bytes,
    header: str | None,
    secret: str,
    now: int,
    tolerance: int = WEBHOOK_TOLERANCE,
) -> None:
    """Check `t=<unix>,v1=<hex>` (several v1 allowed, for secret rotation) over the raw body
    with a constant-time compare; the timestamp must be within `tolerance` of `now`."""
    if not header:
        raise WebhookSignatureError("missing signature header")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise WebhookSignatureError("malformed signature header")
        if key == "t":
            if not value.isascii() or not value.isdigit() or timestamp is not None:
                raise WebhookSignatureError("malformed signature header")
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise WebhookSignatureError("malformed signature header")
    if abs(now - timestamp) > tolerance:
        raise WebhookSignatureError("signature timestamp outside the tolerance")
    expected = _hmac(payload, secret, timestamp)
    # Every candidate is compared (no early exit), each in constant time.
    matched = False
    for candidate in signatures:
        matched |= hmac.compare_digest(expected.encode(), candidate.encode())
    if not matched:
        raise WebhookSignatureError("signature mismatch")


# --- retries --------------------------------------------------------------------------------

GATEWAY_ERROR_CHARGE = Charge(
    id=None,
    status="failed",
    failure_code="gateway_error",
    failure_message="the payment gateway is unavailable",
)


@overload
def with_retries(
    call: Callable[[], Charge],
    *,
    attempts: int,
    base_delay: float = ...,
    budget: float | None = ...,
) -> Charge: ...


@overload
def with_retries[T](
    call: Callable[[], T],
    *,
    attempts: int,
    failure: T,
    base_delay: float = ...,
    budget: float | None = ...,
) -> T: ...


def with_retries(
    call: Callable[[], object],
    *,
    attempts: int,
    failure: object = GATEWAY_ERROR_CHARGE,
    base_delay: float = 0.05,
    budget: float | None = None,
) -> object:
    """Run `call`, retrying with exponential backoff (`base_delay * 2**n`, no sleep after the
    last attempt). The call must reuse one idempotency key, so a retry never acts twice.

    - When every attempt was refused (GatewayUnavailableError) the result is `failure`
      (by default a failed Charge with `gateway_error`).
    - When no attempt gave an answer and one of them had an unknown outcome, the (last)
      GatewayOutcomeUnknownError propagates: the operation must not be recorded as failed.
    - Any other exception propagates at once, without a retry.
    - `budget` (seconds) bounds the whole loop: no attempt starts once the backoff would
      end past it (each call is bounded by the adapter's own timeout).
    """
    started = time.monotonic()
    unknown: GatewayOutcomeUnknownError | None = None
    for attempt in range(attempts):
        try:
            return call()
        except GatewayUnavailableError:
            # Not processed; but an earlier unknown attempt stays unknown: a request that
            # never reached the gateway cannot tell whether that one was processed.
            pass
        except GatewayOutcomeUnknownError as exc:
            unknown = exc
        if attempt + 1 >= attempts:
            break
        delay = base_delay * 2**attempt
        if budget is not None and time.monotonic() - started + delay > budget:
            break
        time.sleep(delay)
    if unknown is not None:
        raise unknown
    return failure
