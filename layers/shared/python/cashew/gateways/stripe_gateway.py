"""The Stripe adapter, on the official SDK (`stripe.StripeClient`).

Mapping: a card token is a PaymentMethod (`pm_...`), a charge is a PaymentIntent (`pi_...`)
confirmed at creation with our `return_url` (3-D Secure: `requires_action` with Stripe's
`next_action.redirect_to_url.url`, then settled by the `payment_intent.*` webhooks; Stripe's
`payment_intent_authentication_failure` is our `authentication_failed`); capture/void are
the PaymentIntent's capture/cancel, a refund is a Refund on the PaymentIntent. Our
idempotency key is Stripe's `Idempotency-Key`, so asking again after an unknown outcome
returns Stripe's first answer.

Payouts (push to card): Stripe pays money out to a card only from a Stripe account's balance
to a debit card that is an external account of that account; a platform's own PaymentMethods
(`pm_...`, what a top-up charges) cannot receive money. So a payout goes, as Stripe documents
for a platform paying its users (Connect, "Pay out to connected accounts", Instant Payouts):
a Transfer (`POST /v1/transfers`, `destination` the user's connected account) moves the
amount from the platform's balance to the user's connected account, then a Payout
(`POST /v1/payouts` with `Stripe-Account: acct_...`, `destination` the debit card
`card_...`, `method: instant`) pushes it to the card, within minutes. Why not a Transfer
alone: it only reaches the connected account's Stripe balance, not the card; why not a
Payout from the platform: the platform's payouts go to the platform's own bank. Both calls
carry keys derived from our idempotency key (`<key>:transfer`, `<key>:payout`), so asking
again after an unknown outcome replays Stripe's first answers and moves nothing twice.
A Payout that fails or that Stripe refuses reverses its Transfer first (`<key>:reversal`), so
the money Cashew credits back is not also left in the connected account; a reversal that is
not confirmed leaves the outcome unknown (asked again later).
A payout's token is therefore `acct_...:card_...` (the connected account and its debit card,
from Connect onboarding); for any other token (a `pm_...`) Stripe cannot push money and the
payout fails at once as `card_declined`, with nothing sent. Payout events (`payout.paid`,
`payout.failed`, sent by Connect webhooks for the connected account) settle a `pending`
(`in_transit`) payout.

Failures: the SDK's own retries are off (we retry, with the same key) and every request is
bounded by a timeout.
- Could not connect (refused, DNS, connect timeout, TLS handshake), 429, or a non-card 4xx
  (Stripe validated and refused the request) → GatewayUnavailableError: not processed.
- Read timeout, connection lost after sending, 5xx, 409 (same key in flight) or an
  unreadable answer → GatewayOutcomeUnknownError: maybe processed.
- 402 card errors → a failed Charge with our failure code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import requests
import stripe
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError

from cashew.gateways.base import (
    WEBHOOK_TOLERANCE,
    AttachedCard,
    CardRejectedError,
    CardUpdate,
    Charge,
    ChargeStatus,
    FailureCode,
    GatewayOutcomeUnknownError,
    GatewayPayout,
    GatewayRefund,
    GatewayUnavailableError,
    PayoutEvent,
    PayoutStatus,
    RefundStatus,
    TokenisedCard,
    TokenRejectedError,
    WebhookEvent,
    WebhookPayloadError,
    WebhookSignatureError,
)
from cashew.observability import logger

if TYPE_CHECKING:
    from stripe.params import PaymentIntentCreateParams

CARD_UPDATED = "payment_method.automatically_updated"
_PAYMENT_METHOD_ID = re.compile(r"pm_[A-Za-z0-9]{1,255}")
DEFAULT_TIMEOUT = 10.0
CONNECT_TIMEOUT = 3.0

_EVENT_STATUSES: dict[str, ChargeStatus] = {
    "payment_intent.succeeded": "succeeded",
    "payment_intent.payment_failed": "failed",
    "payment_intent.amount_capturable_updated": "requires_capture",
    "payment_intent.canceled": "canceled",
    "payment_intent.processing": "processing",
}
_REFUND_STATUSES: dict[str, RefundStatus] = {
    "succeeded": "succeeded",
    "pending": "pending",
    "requires_action": "pending",
    "failed": "failed",
    "canceled": "failed",
}
_PAYOUT_DESTINATION = re.compile(
    r"(?P<account>acct_[A-Za-z0-9]{1,255}):(?P<card>card_[A-Za-z0-9]{1,255})"
)
_PAYOUT_STATUSES: dict[str, PayoutStatus] = {
    "paid": "paid",
    "pending": "pending",
    "in_transit": "pending",
    "failed": "failed",
    "canceled": "failed",
}
_PAYOUT_EVENTS = {"payout.paid": "paid", "payout.failed": "failed"}
_PAYOUT_FAILURES: dict[str, FailureCode] = {
    "insufficient_funds": "insufficient_funds",
    "declined": "card_declined",
    "unsupported_card": "card_declined",
    "debit_not_authorized": "card_declined",
    "could_not_process": "card_declined",
    "account_closed": "card_declined",
    "invalid_card": "card_declined",
}
_MESSAGES: dict[FailureCode, str] = {
    "card_declined": "the card was declined",
    "insufficient_funds": "the card has insufficient funds",
    "expired_card": "the card has expired",
    "gateway_error": "the payment gateway is unavailable",
    "authentication_failed": "the card holder did not complete 3-D Secure authentication",
}
AUTHENTICATION_FAILURE = "payment_intent_authentication_failure"
"""Stripe's error code for a PaymentIntent whose 3-D Secure authentication failed."""


def failure_code(code: str | None, decline_code: str | None) -> FailureCode:
    """Our failure code for Stripe's error `code` and issuer `decline_code`."""
    if code == AUTHENTICATION_FAILURE:
        return "authentication_failed"
    if "expired_card" in (code, decline_code):
        return "expired_card"
    if "insufficient_funds" in (code, decline_code):
        return "insufficient_funds"
    return "card_declined"


def _not_sent(exc: stripe.APIConnectionError) -> bool:
    """Whether the request surely never reached Stripe: the connection was not established
    (refused, DNS, connect timeout) or the TLS handshake failed."""
    cause = exc.__cause__
    if isinstance(cause, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
        return True
    if isinstance(cause, requests.exceptions.ConnectionError) and cause.args:
        inner = cause.args[0]
        return isinstance(inner, MaxRetryError) and isinstance(inner.reason, ConnectTimeoutError)
    return False


@contextmanager
def _translated(operation: str) -> Iterator[None]:
    """Turn the SDK's transport and server errors into the gateway's two exceptions.
    Card errors (402) are left to the caller."""
    try:
        yield
    except stripe.APIConnectionError as exc:
        if _not_sent(exc):
            raise GatewayUnavailableError(f"stripe {operation}: could not connect") from exc
        raise GatewayOutcomeUnknownError(f"stripe {operation}: no answer") from exc
    except stripe.RateLimitError as exc:
        raise GatewayUnavailableError(f"stripe {operation}: rate limited") from exc
    except stripe.CardError:
        raise
    except (
        stripe.InvalidRequestError,
        stripe.AuthenticationError,
        stripe.PermissionError,
        stripe.IdempotencyError,
    ) as exc:
        logger.error(
            "stripe refused the request",
            extra={
                "operation": operation,
                "http_status": exc.http_status,
                "stripe_code": exc.code,
                "stripe_request_id": exc.request_id,
            },
        )
        raise GatewayUnavailableError(f"stripe {operation}: refused ({exc.code})") from exc
    except stripe.StripeError as exc:  # APIError: 5xx, 409, an unreadable answer
        raise GatewayOutcomeUnknownError(
            f"stripe {operation}: server error ({exc.http_status})"
        ) from exc


def _opt(obj: object, name: str) -> Any:
    """An optional field of a Stripe object: absent (not only null) on some responses."""
    return getattr(obj, name, None)


def _declined(exc: stripe.CardError) -> Charge:
    intent = _opt(exc.error, "payment_intent")
    code = failure_code(exc.code, _opt(exc.error, "decline_code"))
    return Charge(
        id=_opt(intent, "id"),
        status="failed",
        failure_code=code,
        failure_message=_MESSAGES[code],
    )


def _charge(intent: stripe.PaymentIntent) -> Charge:
    status = intent.status
    if status == "succeeded":
        return Charge(id=intent.id, status="succeeded", amount_captured=intent.amount_received)
    if status == "requires_capture":
        return Charge(id=intent.id, status="requires_capture", amount_captured=0)
    if status == "processing":
        return Charge(id=intent.id, status="processing")
    if status == "canceled":
        return Charge(id=intent.id, status="canceled", amount_captured=intent.amount_received)
    if status == "requires_action":
        return _action(intent)
    # requires_payment_method (declined), requires_confirmation: the charge did not go through.
    error = _opt(intent, "last_payment_error")
    code = failure_code(_opt(error, "code"), _opt(error, "decline_code"))
    return Charge(id=intent.id, status="failed", failure_code=code, failure_message=_MESSAGES[code])


def _action(intent: stripe.PaymentIntent) -> Charge:
    """A PaymentIntent waiting for the card holder (3-D Secure): `requires_action` with
    Stripe's `next_action.redirect_to_url.url`, the issuer's page (the card holder comes back
    to our `return_url`; the outcome arrives by webhook). Any other kind of action cannot be
    offered through a redirect, so the charge cannot go on: failed, `authentication_failed`
    (no money moved; the PaymentIntent is left to expire at Stripe)."""
    action = _opt(intent, "next_action")
    redirect = (
        _opt(action, "redirect_to_url") if _opt(action, "type") == "redirect_to_url" else None
    )
    url = _opt(redirect, "url")
    if isinstance(url, str) and url.startswith("https://"):
        return Charge(id=intent.id, status="requires_action", amount_captured=0, action_url=url)
    logger.warning(
        "stripe asked for an action other than a redirect",
        extra={"payment_intent": intent.id, "next_action_type": _opt(action, "type")},
    )
    return Charge(
        id=intent.id,
        status="failed",
        failure_code="authentication_failed",
        failure_message=_MESSAGES["authentication_failed"],
    )


def _payout(payout_id: str, status: object, code: object) -> GatewayPayout:
    mapped = _PAYOUT_STATUSES.get(str(status), "pending")  # an unknown status: ask again later
    if mapped != "failed":
        return GatewayPayout(payout_id, mapped)
    failure = _PAYOUT_FAILURES.get(str(code), "card_declined")
    return GatewayPayout(payout_id, "failed", failure, _MESSAGES[failure])


def _payout_event(event_id: str, kind: str, payout: dict[str, Any]) -> PayoutEvent:
    ours = (payout.get("metadata") or {}).get("payout_id")
    amount, currency = payout.get("amount"), payout.get("currency")
    settled = _payout(str(payout["id"]), _PAYOUT_EVENTS[kind], payout.get("failure_code"))
    return PayoutEvent(
        id=event_id,
        gateway_payout_id=str(payout["id"]),
        payout_id=str(ours) if ours else None,
        status="paid" if settled.status == "paid" else "failed",
        failure_code=settled.failure_code,
        amount=amount if isinstance(amount, int) else None,
        currency=currency.upper() if isinstance(currency, str) else None,
    )


def _risky(method: stripe.PaymentMethod) -> bool:
    """The card's risk flag: a check the issuer ran (CVC, address) failed."""
    checks = _opt(_opt(method, "card"), "checks")
    names = ("cvc_check", "address_line1_check", "address_postal_code_check")
    return any(_opt(checks, name) == "fail" for name in names)


def _card_update(event_id: str, method: dict[str, Any]) -> CardUpdate:
    """The card update a `payment_method.automatically_updated` event carries."""
    card = method.get("card") or {}
    last4, month, year = card.get("last4"), card.get("exp_month"), card.get("exp_year")
    valid = (
        method.get("object") == "payment_method"
        and isinstance(last4, str)
        and re.fullmatch(r"[0-9]{4}", last4) is not None
        and isinstance(month, int)
        and 1 <= month <= 12
        and isinstance(year, int)
        and 2000 <= year <= 2100
    )
    if not valid:
        raise WebhookPayloadError("not a card payment method update")
    brand = card.get("brand")
    return CardUpdate(
        id=event_id,
        type=CARD_UPDATED,
        token=str(method["id"]),
        last4=str(last4),
        exp_month=int(str(month)),
        exp_year=int(str(year)),
        brand=brand if isinstance(brand, str) else None,
    )


def _timestamp(header: str) -> int:
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isascii() and value.isdigit():
            return int(value)
    raise WebhookSignatureError("malformed signature header")


class StripeGateway:
    signature_header = "Stripe-Signature"

    def __init__(
        self,
        api_key: str,
        webhook_secret: str,
        api_base: str | None = None,
        client: stripe.StripeClient | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        return_url: str = "http://127.0.0.1:3000/#/3ds-return",
    ) -> None:
        if not return_url.startswith(("http://", "https://")):
            raise ValueError("the 3-D Secure return URL must be http(s)")
        self._return_url = return_url
        if client is None:
            http_client = stripe.RequestsClient(timeout=(min(CONNECT_TIMEOUT, timeout), timeout))
            client = stripe.StripeClient(
                api_key,
                base_addresses={"api": api_base} if api_base else None,
                max_network_retries=0,
                http_client=http_client,
            )
        self._client = client
        self._webhook_secret = webhook_secret

    # --- cards and charges ----------------------------------------------------------------

    def tokenise(self, number: str, exp_month: int, exp_year: int, cvc: str) -> TokenisedCard:
        """A PaymentMethod from raw card details (needs Stripe's raw card data access; the
        browser-side flow hands us a `pm_...` directly instead)."""
        try:
            with _translated("tokenise"):
                method = self._client.v1.payment_methods.create(
                    params={
                        "type": "card",
                        "card": {
                            "number": number,
                            "exp_month": exp_month,
                            "exp_year": exp_year,
                            "cvc": cvc,
                        },
                    }
                )
        except stripe.CardError as exc:
            code = failure_code(exc.code, _opt(exc.error, "decline_code"))
            raise CardRejectedError(code, _MESSAGES[code]) from exc
        return TokenisedCard(token=method.id, risk_flag=_risky(method))

    def attach_token(self, token: str) -> AttachedCard:
        """A PaymentMethod the browser created with Stripe.js / Elements (`pm_...`): retrieved
        (GET /v1/payment_methods/{id}); one that is not a card, or that Stripe does not know,
        is unknown; one attached to a customer already is refused."""
        if _PAYMENT_METHOD_ID.fullmatch(token) is None:
            raise TokenRejectedError("unknown", "gateway_token is not a Stripe payment method")
        with _translated("attach_token"):
            try:
                method = self._client.v1.payment_methods.retrieve(token)
            except stripe.InvalidRequestError as exc:
                if exc.http_status == 404 or exc.code == "resource_missing":
                    raise TokenRejectedError(
                        "unknown", "gateway_token is not a payment method Stripe knows"
                    ) from exc
                raise
        card = _opt(method, "card")
        if _opt(method, "type") != "card" or card is None:
            raise TokenRejectedError("unknown", "gateway_token is not a card payment method")
        if _opt(method, "customer"):
            raise TokenRejectedError("attached", "gateway_token is attached to a customer already")
        return AttachedCard(
            token=method.id,
            risk_flag=_risky(method),
            brand=str(_opt(card, "brand") or "unknown"),
            last4=str(card.last4),
            exp_month=int(card.exp_month),
            exp_year=int(card.exp_year),
            fingerprint=str(_opt(card, "fingerprint") or method.id),
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
        params: PaymentIntentCreateParams = {
            "amount": amount,
            "currency": currency.lower(),
            "payment_method": token,
            # the card given (`payment_method`) is the only method used; with a return_url
            # a card that asks for 3-D Secure answers requires_action with a redirect_to_url
            # next action, after which Stripe sends the card holder to that URL
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "always"},
            "return_url": self._return_url,
            "confirm": True,
            "metadata": dict(metadata),
        }
        if not capture:
            params["capture_method"] = "manual"
        try:
            with _translated("authorise"):
                intent = self._client.v1.payment_intents.create(
                    params=params, options={"idempotency_key": idempotency_key}
                )
        except stripe.CardError as exc:
            return _declined(exc)
        return _charge(intent)

    def capture(self, charge_id: str, amount: int, *, idempotency_key: str) -> Charge:
        try:
            with _translated("capture"):
                intent = self._client.v1.payment_intents.capture(
                    charge_id,
                    params={"amount_to_capture": amount},
                    options={"idempotency_key": idempotency_key},
                )
        except stripe.CardError as exc:
            return _declined(exc)
        return _charge(intent)

    def void(self, charge_id: str, *, idempotency_key: str) -> Charge:
        try:
            with _translated("void"):
                intent = self._client.v1.payment_intents.cancel(
                    charge_id, options={"idempotency_key": idempotency_key}
                )
        except stripe.CardError as exc:
            return _declined(exc)
        return _charge(intent)

    def refund(self, charge_id: str, amount: int, *, idempotency_key: str) -> GatewayRefund:
        try:
            with _translated("refund"):
                refund = self._client.v1.refunds.create(
                    params={"payment_intent": charge_id, "amount": amount},
                    options={"idempotency_key": idempotency_key},
                )
        except stripe.CardError as exc:
            return GatewayRefund(id=None, status="failed", failure_code=exc.code)
        status = _REFUND_STATUSES.get(_opt(refund, "status") or "", "pending")
        return GatewayRefund(
            id=refund.id, status=status, failure_code=_opt(refund, "failure_reason")
        )

    def retrieve_charge(self, charge_id: str) -> Charge:
        """The PaymentIntent as Stripe has it now (GET /v1/payment_intents/{id})."""
        with _translated("retrieve_charge"):
            intent = self._client.v1.payment_intents.retrieve(charge_id)
        return _charge(intent)

    def payout(
        self,
        token: str,
        amount: int,
        currency: str,
        *,
        idempotency_key: str,
        metadata: dict[str, str],
    ) -> GatewayPayout:
        """A Transfer to the user's connected account, then an instant Payout from it to its
        debit card (see the module's docstring)."""
        destination = _PAYOUT_DESTINATION.fullmatch(token)
        if destination is None:
            return GatewayPayout(
                None, "failed", "card_declined", "this card cannot receive payouts"
            )
        account, card = destination["account"], destination["card"]
        with _translated("payout transfer"):
            transfer = self._client.v1.transfers.create(
                params={
                    "amount": amount,
                    "currency": currency.lower(),
                    "destination": account,
                    "metadata": dict(metadata),
                },
                options={"idempotency_key": f"{idempotency_key}:transfer"},
            )
        try:
            with _translated("payout"):
                payout = self._client.v1.payouts.create(
                    params={
                        "amount": amount,
                        "currency": currency.lower(),
                        "destination": card,
                        "method": "instant",
                        "metadata": dict(metadata),
                    },
                    options={
                        "idempotency_key": f"{idempotency_key}:payout",
                        "stripe_account": account,
                    },
                )
        except GatewayUnavailableError:  # refused: Cashew fails the payout and credits back
            self._reverse(transfer.id, amount, idempotency_key, metadata)
            raise
        answer = _payout(payout.id, _opt(payout, "status"), _opt(payout, "failure_code"))
        if answer.status == "failed":
            self._reverse(transfer.id, amount, idempotency_key, metadata)
        return answer

    def _reverse(
        self, transfer_id: str, amount: int, idempotency_key: str, metadata: dict[str, str]
    ) -> None:
        """Take a failed payout's Transfer back to the platform's balance (`<key>:reversal`)
        before Cashew credits the user's balance back: otherwise the money would be both
        there and in the connected account. A reversal Stripe refuses or does not answer
        leaves the outcome unknown (the payout stays pending and is asked again)."""
        try:
            with _translated("payout transfer reversal"):
                self._client.v1.transfers.reversals.create(
                    transfer_id,
                    params={"amount": amount, "metadata": dict(metadata)},
                    options={"idempotency_key": f"{idempotency_key}:reversal"},
                )
        except GatewayUnavailableError as exc:
            raise GatewayOutcomeUnknownError(
                "stripe payout transfer reversal: not confirmed"
            ) from exc

    # --- webhooks -------------------------------------------------------------------------

    def parse_webhook(
        self, payload: bytes, signature_header: str | None, now: int
    ) -> WebhookEvent | CardUpdate | PayoutEvent | None:
        """Verify Stripe's `Stripe-Signature` with the SDK (constant-time compare), check its
        timestamp against `now` both ways, and map the PaymentIntent events and the card
        updates (`payment_method.automatically_updated`)."""
        try:
            stripe.WebhookSignature.verify_header(
                payload, signature_header, self._webhook_secret, tolerance=None
            )
        except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
            raise WebhookSignatureError("invalid stripe signature") from exc
        if abs(now - _timestamp(signature_header or "")) > WEBHOOK_TOLERANCE:
            raise WebhookSignatureError("signature timestamp outside the tolerance")
        try:
            event = self._client.construct_event_without_verification(payload)
            kind = event.type
            intent: dict[str, Any] = event.data.object.to_dict()
            charge_id = str(intent["id"])
        except (ValueError, KeyError, AttributeError) as exc:
            raise WebhookPayloadError("not a stripe event") from exc
        if kind == CARD_UPDATED:
            return _card_update(event.id, intent)
        if kind in _PAYOUT_EVENTS and intent.get("object") == "payout":
            return _payout_event(event.id, kind, intent)
        status = _EVENT_STATUSES.get(kind)
        if status is None or intent.get("object") != "payment_intent":
            return None
        metadata = intent.get("metadata") or {}
        payment_id = metadata.get("payment_id")
        code: FailureCode | None = None
        if status == "failed":
            error = intent.get("last_payment_error") or {}
            code = failure_code(error.get("code"), error.get("decline_code"))
        captured = intent.get("amount_received")
        currency = intent.get("currency")
        return WebhookEvent(
            id=event.id,
            type=kind,
            charge_id=charge_id,
            payment_id=str(payment_id) if payment_id else None,
            status=status,
            failure_code=code,
            amount_captured=captured if isinstance(captured, int) else None,
            currency=currency.upper() if isinstance(currency, str) else None,
        )
