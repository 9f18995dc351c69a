"""The sandbox gateway: deterministic by card number (API.md's card table), no state.

- The token carries the card's scenario, never its number.
- Cards by token (`POST /_sandbox/v1/tokens`, served by the local stack, standing for
  Stripe.js): `issue_token` gives the client a self-describing `tok_...` (scenario, brand,
  last4, expiry, the sandbox's fingerprint of the number, a random nonce) authenticated with
  an HMAC under a key derived from the gateway secret, so the functions recognise it without
  shared state and a forged or edited token is refused. It never carries the number or cvc.
  "Already attached" is Cashew's to enforce (a marker item per charging token).
- A charge's id is derived from the idempotency key (`ch_sbx_<sha256(key)[:24]>`), a
  refund's likewise (`re_sbx_...`): repeating a call with the same key gives the same answer.
- The processing card answers `processing`; when a webhook URL is configured, the sandbox
  asks it (the local stack's scheduler) to deliver the signed outcome a few seconds later.
- The 3-D Secure card answers `requires_action` with the URL of the local stack's challenge
  page (`challenge_url`): `<challenge_url>/<reference>`, the reference a description of the
  charge sealed (AES-GCM) and authenticated with an HMAC under keys derived from the gateway
  secret (so it is
  unguessable, and the same key gives the same URL). Completing the page sends the signed
  `challenge_event` (see local/challenges.py).
- A processing charge's id says how it ends, as the card table does for every other outcome:
  `ch_sbx_<hex>` is captured, `ch_sbx_z<hex>` (not hex: never another id) only authorised
  (`capture: false`). `retrieve_charge` answers that outcome, as the webhook would, so
  reconciliation can settle a processing charge whose webhook was lost; the sandbox keeps no
  state, and Cashew only ever asks it about processing charges.
- Payouts (push to card) behave as the card's charges: approved cards are `paid`, declines
  fail with their code, the error card is unavailable, the processing card is `pending`
  and its signed `payout.paid` webhook is scheduled as a processing charge's is. A payout's
  id is derived from its idempotency key (`po_sbx_<sha256(key)[:24]>`).
- The error card fails every charge with GatewayUnavailableError. It never gets a charge
  id, so capture/void/refund fail that way for ids with `OUTAGE_CHARGE_PREFIX` instead.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import http.client
import json
import re
import secrets
import urllib.request
from collections.abc import Callable
from typing import Annotated, Any, Literal

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from cashew.gateways.base import (
    SIGNATURE_HEADER,
    AttachedCard,
    CardUpdate,
    Charge,
    ChargeStatus,
    FailureCode,
    GatewayPayout,
    GatewayRefund,
    GatewayUnavailableError,
    PayoutEvent,
    TokenisedCard,
    TokenRejectedError,
    WebhookEvent,
    WebhookPayloadError,
    card_brand,
    sign_webhook,
    verify_signature,
)
from cashew.observability import logger

SCENARIOS = {
    "4000000000000002": "declined",
    "4000000000009995": "insufficient",
    "4000000000000069": "expired",
    "4000000000000119": "error",
    "4000000000003220": "processing",
    "4100000000000019": "risky",
    "4000000000003063": "challenge",
}
"""Every other number (4242424242424242, 5555555555554444, ...) is approved."""
_FAILURES: dict[str, tuple[FailureCode, str]] = {
    "declined": ("card_declined", "the card was declined"),
    "insufficient": ("insufficient_funds", "the card has insufficient funds"),
    "expired": ("expired_card", "the card has expired"),
}
TOKEN_PREFIX = "tok_sbx_"  # nosec B105 # the sandbox's token prefix, not a secret
CLIENT_TOKEN_PREFIX = "tok_"  # nosec B105 # the prefix of tokens handed to clients
_CLIENT_TOKEN = re.compile(
    r"tok_(?P<scenario>approved|declined|insufficient|expired|error|processing|risky|challenge)"
    r"\.(?P<brand>visa|mastercard|amex|unknown)\.(?P<last4>[0-9]{4})"
    r"\.(?P<month>0[1-9]|1[0-2])(?P<year>20[0-9]{2}|2100)"
    r"\.(?P<fingerprint>[0-9a-f]{16})\.(?P<nonce>[0-9a-f]{24})\.(?P<mac>[0-9a-f]{32})"
)
"""`tok_<scenario>.<brand>.<last4>.<MMYYYY>.<fingerprint>.<nonce>.<mac>`"""
CHARGE_PREFIX = "ch_sbx_"
REFUND_PREFIX = "re_sbx_"
PAYOUT_PREFIX = "po_sbx_"
EVENT_PREFIX = "evt_sbx_"
AUTHORISED_CHARGE_PREFIX = "ch_sbx_z"
"""A processing charge authorised only (`capture: false`): it ends `requires_capture`."""
OUTAGE_CHARGE_PREFIX = "ch_sbx_error_"
"""Capture, void and refund of such a charge id fail with GatewayUnavailableError (ids
derived from keys are hex, so they never start with it)."""

DEFAULT_CHALLENGE_URL = "http://127.0.0.1:3000/_sandbox/v1/challenges"
_CHALLENGE_REF = re.compile(r"(?P<body>[A-Za-z0-9_-]{1,512})\.(?P<mac>[0-9a-f]{32})")
AUTHENTICATION_FAILED = "the card holder did not pass 3-D Secure authentication"
DEFAULT_WEBHOOK_SECRET = "whsec_sandbox_local"  # nosec B105 # local default (API.md)
WEBHOOK_DELAY_SECONDS = 3
SCHEDULE_TIMEOUT_SECONDS = 2.0

Transport = Callable[[str, bytes, float], None]
"""POST `body` (JSON) to `url` within `timeout` seconds; raises OSError on failure."""


def _post_json(url: str, body: bytes, timeout: float) -> None:
    request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 # nosec B310 # our API's URL
        response.read()


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:24]


class _EventData(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    charge_id: str
    payment_id: str | None = None
    status: ChargeStatus
    failure_code: FailureCode | None = None
    amount_captured: int | None = None
    currency: str | None = None


class _Event(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    type: Literal["charge.succeeded", "charge.failed"]
    data: _EventData


class Challenge(BaseModel):
    """The charge a 3-D Secure challenge authenticates, as its reference describes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    charge_id: str = Field(pattern=r"^ch_sbx_[0-9a-f]{24}$")
    payment_id: str | None = Field(default=None, max_length=64)
    amount: int = Field(strict=True, ge=1)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    capture: bool = Field(strict=True)


class _CardData(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    token: str
    last4: str = Field(pattern=r"^[0-9]{4}$")
    exp_month: int = Field(strict=True, ge=1, le=12)
    exp_year: int = Field(strict=True, ge=2000, le=2100)


class _CardEvent(BaseModel):
    """The sandbox's card-update event (as Stripe's `payment_method.automatically_updated`):
    the card charged by `data.token` now has this last4 and expiry."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    type: Literal["payment_method.automatically_updated"]
    data: _CardData


class _PayoutData(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    gateway_payout_id: str
    payout_id: str | None = None
    failure_code: FailureCode | None = None
    amount: int | None = None
    currency: str | None = None


class _PayoutEvent(BaseModel):
    """The outcome of a `pending` payout."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    type: Literal["payout.paid", "payout.failed"]
    data: _PayoutData


_ANY_EVENT: TypeAdapter[_Event | _CardEvent | _PayoutEvent] = TypeAdapter(
    Annotated[_Event | _CardEvent | _PayoutEvent, Field(discriminator="type")]
)


def encode_event(event: dict[str, Any]) -> bytes:
    """The exact body the sandbox's webhooks carry (compact JSON, UTF-8)."""
    return json.dumps(event, separators=(",", ":"), sort_keys=True).encode()


def signed_delivery(event: dict[str, Any], secret: str, now: int) -> tuple[bytes, str]:
    """The body and `Gateway-Signature` header with which to deliver `event` at `now` (for
    the local stack's scheduler, which signs at delivery time)."""
    body = encode_event(event)
    return body, sign_webhook(body, secret, now)


class SandboxGateway:
    signature_header = SIGNATURE_HEADER

    def __init__(
        self,
        *,
        webhook_url: str | None = None,
        secret: str = DEFAULT_WEBHOOK_SECRET,
        challenge_url: str = DEFAULT_CHALLENGE_URL,
        delay_seconds: int = WEBHOOK_DELAY_SECONDS,
        timeout: float = SCHEDULE_TIMEOUT_SECONDS,
        transport: Transport | None = None,
    ) -> None:
        if webhook_url is not None and not webhook_url.startswith(("http://", "https://")):
            raise ValueError("the sandbox webhook URL must be http(s)")
        if not challenge_url.startswith(("http://", "https://")):
            raise ValueError("the sandbox challenge URL must be http(s)")
        self.webhook_url = webhook_url
        self.challenge_url = challenge_url.rstrip("/")
        self._secret = secret
        self._delay = delay_seconds
        self._timeout = timeout
        self._transport = transport or _post_json

    # --- cards and charges ----------------------------------------------------------------

    def tokenise(self, number: str, exp_month: int, exp_year: int, cvc: str) -> TokenisedCard:
        scenario = SCENARIOS.get(number, "approved")
        token = f"{TOKEN_PREFIX}{scenario}_{secrets.token_hex(12)}"
        return TokenisedCard(token=token, risk_flag=scenario == "risky")

    # --- cards by token (the client tokenises at the gateway) -----------------------------

    def _token_key(self) -> bytes:
        """The key of client tokens: derived from the gateway secret (never the webhook
        signing key itself)."""
        return hmac.new(self._secret.encode(), b"cashew-sandbox-card-token", "sha256").digest()

    def _mac(self, body: str) -> str:
        return hmac.new(self._token_key(), body.encode(), hashlib.sha256).hexdigest()[:32]

    def issue_token(self, number: str, exp_month: int, exp_year: int) -> str:
        """A client token for a validated card (the number's digits, its expiry): what
        `POST /_sandbox/v1/tokens` answers. It carries no number and no cvc."""
        fingerprint = hmac.new(self._token_key(), b"fingerprint:" + number.encode(), "sha256")
        body = ".".join((
            CLIENT_TOKEN_PREFIX + SCENARIOS.get(number, "approved"),
            card_brand(number),
            number[-4:],
            f"{exp_month:02d}{exp_year}",
            fingerprint.hexdigest()[:16],
            secrets.token_hex(12),
        ))  # fmt: skip
        return f"{body}.{self._mac(body)}"

    def attach_token(self, token: str) -> AttachedCard:
        """The card a client token describes, once its HMAC is checked (constant time). Its
        charging token is derived from it (same client token, same charging token), so
        Cashew's marker of attached tokens catches a second attach of it."""
        match = _CLIENT_TOKEN.fullmatch(token)
        if match is None:
            raise TokenRejectedError("unknown", "gateway_token is not a token of this gateway")
        body = token.rsplit(".", 1)[0]
        if not hmac.compare_digest(self._mac(body).encode(), match["mac"].encode()):
            raise TokenRejectedError("unknown", "gateway_token is not a token of this gateway")
        scenario = match["scenario"]
        return AttachedCard(
            token=f"{TOKEN_PREFIX}{scenario}_{match['nonce']}",
            risk_flag=scenario == "risky",
            brand=match["brand"],
            last4=match["last4"],
            exp_month=int(match["month"]),
            exp_year=int(match["year"]),
            fingerprint=match["fingerprint"],
        )

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
        if not token.startswith(TOKEN_PREFIX):
            raise ValueError("not a sandbox token")
        scenario = token.removeprefix(TOKEN_PREFIX).rsplit("_", 1)[0]
        charge_id = CHARGE_PREFIX + _digest(idempotency_key)
        if scenario == "error":
            raise GatewayUnavailableError("sandbox: simulated gateway error")
        if scenario in _FAILURES:
            code, message = _FAILURES[scenario]
            return Charge(id=charge_id, status="failed", failure_code=code, failure_message=message)
        if scenario == "processing":
            if not capture:
                charge_id = AUTHORISED_CHARGE_PREFIX + _digest(idempotency_key)[1:]
            self._schedule_outcome(
                charge_id, amount, idempotency_key, capture, metadata.get("payment_id")
            )
            return Charge(id=charge_id, status="processing")
        if scenario == "challenge":
            challenge = Challenge(
                charge_id=charge_id,
                payment_id=metadata.get("payment_id"),
                amount=amount,
                currency=currency.upper(),
                capture=capture,
            )
            url = f"{self.challenge_url}/{self.challenge_reference(challenge)}"
            return Charge(id=charge_id, status="requires_action", amount_captured=0, action_url=url)
        if capture:
            return Charge(id=charge_id, status="succeeded", amount_captured=amount)
        return Charge(id=charge_id, status="requires_capture", amount_captured=0)

    # --- 3-D Secure challenges ------------------------------------------------------------

    def _challenge_key(self, purpose: bytes) -> bytes:
        return hmac.new(self._secret.encode(), purpose, "sha256").digest()

    def _challenge_mac(self, body: str) -> str:
        key = self._challenge_key(b"cashew-sandbox-challenge")
        return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()[:32]

    def challenge_reference(self, challenge: Challenge) -> str:
        """The unguessable reference of a challenge: its description (compact JSON) sealed
        with AES-GCM, so a URL in a browser's history, a proxy's log or a Referer names no
        payment, amount or charge, URL-safe base64, and an HMAC of that. The nonce is derived
        from the description, so the same charge always has the same reference (and two
        descriptions never share a nonce)."""
        raw = json.dumps(challenge.model_dump(), separators=(",", ":"), sort_keys=True).encode()
        key = self._challenge_key(b"cashew-sandbox-challenge-seal")
        nonce = hmac.new(key, raw, hashlib.sha256).digest()[:12]
        sealed = nonce + AESGCM(key).encrypt(nonce, raw, None)
        body = base64.urlsafe_b64encode(sealed).decode().rstrip("=")
        return f"{body}.{self._challenge_mac(body)}"

    def read_challenge(self, reference: str) -> Challenge | None:
        """The challenge a reference describes, once its HMAC is checked (constant time) and
        its description unsealed; None for anything this gateway did not issue."""
        match = _CHALLENGE_REF.fullmatch(reference)
        if match is None:
            return None
        body = match["body"]
        if not hmac.compare_digest(self._challenge_mac(body).encode(), match["mac"].encode()):
            return None
        try:
            sealed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            key = self._challenge_key(b"cashew-sandbox-challenge-seal")
            raw = AESGCM(key).decrypt(sealed[:12], sealed[12:], None)
            return Challenge.model_validate_json(raw)
        except (binascii.Error, ValueError, InvalidTag):  # ValidationError is a ValueError
            return None

    @staticmethod
    def challenge_event(challenge: Challenge, passed: bool) -> dict[str, Any]:
        """The webhook event a completed challenge sends: the charge goes on as it would have
        (settled, or authorised when not captured), or fails with `authentication_failed`.
        One event id per charge, whichever the result: only one can ever apply."""
        data: dict[str, Any] = {
            "charge_id": challenge.charge_id,
            "payment_id": challenge.payment_id,
            "currency": challenge.currency,
        }
        if not passed:
            data |= {"status": "failed", "failure_code": "authentication_failed"}
            data["amount_captured"] = 0
        elif challenge.capture:
            data |= {"status": "succeeded", "failure_code": None}
            data["amount_captured"] = challenge.amount
        else:
            data |= {"status": "requires_capture", "failure_code": None, "amount_captured": 0}
        return {
            "id": EVENT_PREFIX + _digest("challenge:" + challenge.charge_id),
            "type": "charge.succeeded" if passed else "charge.failed",
            "data": data,
        }

    def capture(self, charge_id: str, amount: int, *, idempotency_key: str) -> Charge:
        self._check_charge(charge_id)
        if amount < 1:
            raise ValueError("the amount to capture must be positive")
        return Charge(id=charge_id, status="succeeded", amount_captured=amount)

    def void(self, charge_id: str, *, idempotency_key: str) -> Charge:
        self._check_charge(charge_id)
        return Charge(id=charge_id, status="canceled", amount_captured=0)

    def refund(self, charge_id: str, amount: int, *, idempotency_key: str) -> GatewayRefund:
        self._check_charge(charge_id)
        if amount < 1:
            raise ValueError("the amount to refund must be positive")
        return GatewayRefund(id=REFUND_PREFIX + _digest(idempotency_key), status="succeeded")

    def retrieve_charge(self, charge_id: str) -> Charge:
        """The outcome a processing charge ends in (its id says which): what its webhook
        reports, with the whole amount captured unless only authorised."""
        self._check_charge(charge_id)
        if charge_id.startswith(AUTHORISED_CHARGE_PREFIX):
            return Charge(id=charge_id, status="requires_capture", amount_captured=0)
        return Charge(id=charge_id, status="succeeded")

    def payout(
        self,
        token: str,
        amount: int,
        currency: str,
        *,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> GatewayPayout:
        if not token.startswith(TOKEN_PREFIX):
            raise ValueError("not a sandbox token")
        if amount < 1:
            raise ValueError("the amount to pay out must be positive")
        scenario = token.removeprefix(TOKEN_PREFIX).rsplit("_", 1)[0]
        payout_id = PAYOUT_PREFIX + _digest(idempotency_key)
        if scenario == "error":
            raise GatewayUnavailableError("sandbox: simulated gateway error")
        if scenario in _FAILURES:
            code, message = _FAILURES[scenario]
            return GatewayPayout(payout_id, "failed", failure_code=code, failure_message=message)
        if scenario == "processing":
            event = self.payout_event(
                payout_id, amount, currency, idempotency_key, metadata.get("payout_id")
            )
            self._schedule(event, payout_id)
            return GatewayPayout(payout_id, "pending")
        return GatewayPayout(payout_id, "paid")

    def payout_event(
        self,
        gateway_payout_id: str,
        amount: int,
        currency: str,
        idempotency_key: str,
        payout_id: str | None,
    ) -> dict[str, Any]:
        """The webhook event that settles a pending payout (same key, same event id)."""
        return {
            "id": EVENT_PREFIX + _digest("payout-event:" + idempotency_key),
            "type": "payout.paid",
            "data": {
                "gateway_payout_id": gateway_payout_id,
                "payout_id": payout_id,
                "failure_code": None,
                "amount": amount,
                "currency": currency,
            },
        }

    @staticmethod
    def _check_charge(charge_id: str) -> None:
        if not charge_id.startswith(CHARGE_PREFIX):
            raise ValueError("not a sandbox charge")
        if charge_id.startswith(OUTAGE_CHARGE_PREFIX):
            raise GatewayUnavailableError("sandbox: simulated gateway error")

    # --- webhooks -------------------------------------------------------------------------

    def outcome_event(
        self,
        charge_id: str,
        amount: int,
        idempotency_key: str,
        capture: bool,
        payment_id: str | None,
    ) -> dict[str, Any]:
        """The webhook event that settles a processing charge (same key, same event id)."""
        return {
            "id": EVENT_PREFIX + _digest("event:" + idempotency_key),
            "type": "charge.succeeded",
            "data": {
                "charge_id": charge_id,
                "payment_id": payment_id,
                "status": "succeeded" if capture else "requires_capture",
                "failure_code": None,
                "amount_captured": amount if capture else 0,
            },
        }

    def _schedule_outcome(
        self, charge_id: str, amount: int, key: str, capture: bool, payment_id: str | None
    ) -> None:
        self._schedule(self.outcome_event(charge_id, amount, key, capture, payment_id), charge_id)

    def _schedule(self, event: dict[str, Any], charge_id: str) -> None:
        if self.webhook_url is None:
            return
        body = json.dumps({"delay_seconds": self._delay, "event": event}).encode()
        try:
            self._transport(self.webhook_url, body, self._timeout)
        except (OSError, http.client.HTTPException) as exc:
            logger.warning(
                "sandbox: could not schedule the webhook of a processing charge",
                extra={"charge_id": charge_id, "error": type(exc).__name__},
            )

    def parse_webhook(
        self, payload: bytes, signature_header: str | None, now: int
    ) -> WebhookEvent | CardUpdate | PayoutEvent | None:
        verify_signature(payload, signature_header, self._secret, now)
        try:
            event = _ANY_EVENT.validate_json(payload)
        except ValidationError as exc:
            raise WebhookPayloadError("not a sandbox gateway event") from exc
        if isinstance(event, _CardEvent):
            card = event.data
            return CardUpdate(
                id=event.id, type=event.type, token=card.token, last4=card.last4,
                exp_month=card.exp_month, exp_year=card.exp_year,
            )  # fmt: skip
        if isinstance(event, _PayoutEvent):
            paid = event.data
            return PayoutEvent(
                id=event.id, gateway_payout_id=paid.gateway_payout_id, payout_id=paid.payout_id,
                status="paid" if event.type == "payout.paid" else "failed",
                failure_code=paid.failure_code, amount=paid.amount, currency=paid.currency,
            )  # fmt: skip
        data = event.data
        return WebhookEvent(
            id=event.id,
            type=event.type,
            charge_id=data.charge_id,
            payment_id=data.payment_id,
            status=data.status,
            failure_code=data.failure_code,
            amount_captured=data.amount_captured,
            currency=data.currency,
        )
