"""The Stripe adapter through the official SDK, against a local HTTP server that answers like
Stripe (form-encoded requests, JSON objects and errors, idempotent replays). Nothing leaves
127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import stripe

from cashew.gateways.base import (
    AttachedCard,
    CardRejectedError,
    CardUpdate,
    GatewayOutcomeUnknownError,
    GatewayRefund,
    GatewayUnavailableError,
    TokenRejectedError,
    WebhookPayloadError,
    WebhookSignatureError,
    with_retries,
)
from cashew.gateways.stripe_gateway import StripeGateway

API_KEY = "sk_test_cashew"
WEBHOOK_SECRET = "whsec_stripe_test"
NOW = 1_750_000_000
SLOW_SECONDS = 1.5

# Card numbers the fake Stripe knows (Stripe's own test cards where one exists).
CARDS = {
    "4242424242424242": "approved",
    "4000000000009995": "insufficient",
    "4000000000000002": "declined",
    "4000000000000069": "expired",
    "4000000000000101": "risky",  # Stripe's "cvc_check fails" card
    "4000000000003220": "processing",
    "4000000000003063": "authentication",  # requires_action: 3-D Secure, by redirect
    "4000000000003055": "sdk_action",  # requires_action that only Stripe.js could handle
    "4000000000000010": "server_error",
    "4000000000000036": "flaky",  # 500 the first time a key is seen, then the answer
    "4000000000000044": "slow",
    "4000000000000051": "rate_limited",
    "4000000000000077": "conflict",
    "4000000000000085": "invalid",
}


def card_error(
    code: str, decline_code: str | None, intent: dict[str, Any] | None
) -> dict[str, Any]:
    error: dict[str, Any] = {
        "type": "card_error",
        "code": code,
        "message": "Your card was declined.",
        "doc_url": f"https://stripe.com/docs/error-codes/{code}",
    }
    if decline_code:
        error["decline_code"] = decline_code
    if intent is not None:
        error["payment_intent"] = intent
    return {"error": error}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]


@dataclass
class FakeStripe:
    url: str
    requests: list[Seen] = field(default_factory=list)
    replies: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    keys_seen: set[str] = field(default_factory=set)

    def last(self, path: str) -> Seen:
        return [r for r in self.requests if r.path == path][-1]


def intent(pi_id: str, form: dict[str, str], status: str, **extra: Any) -> dict[str, Any]:
    amount = int(form.get("amount", "0"))
    return {
        "id": pi_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": amount if status == "requires_capture" else 0,
        "amount_received": amount if status == "succeeded" else 0,
        "capture_method": form.get("capture_method", "automatic_async"),
        "currency": form.get("currency", "usd"),
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": {
            k[len("metadata[") : -1]: v for k, v in form.items() if k.startswith("metadata[")
        },
        "payment_method": form.get("payment_method"),
        "status": status,
        **extra,
    }


DECLINES = {
    "insufficient": ("card_declined", "insufficient_funds"),
    "declined": ("card_declined", "generic_decline"),
    "expired": ("expired_card", None),
}
ERRORS: dict[str, tuple[int, dict[str, Any]]] = {
    "server_error": (500, {"error": {"type": "api_error", "message": "Something went wrong."}}),
    "rate_limited": (429, {"error": {"type": "invalid_request_error", "code": "rate_limit"}}),
    "conflict": (409, {"error": {"type": "idempotency_error", "message": "key in use"}}),
    "invalid": (400, {"error": {"type": "invalid_request_error", "code": "resource_missing"}}),
}
STATUSES = {
    "processing": "processing",
    "authentication": "requires_action",
    "sdk_action": "requires_action",
}
ISSUER_PAGE = "https://hooks.stripe.com/3d_secure_2/hosted?merchant=acct_1&payment_intent="


def next_action(scenario: str, pi_id: str, form: dict[str, str]) -> dict[str, Any]:
    """Stripe's next_action of a PaymentIntent in requires_action: with a return_url, 3-D
    Secure is a redirect to the issuer's page; otherwise Stripe.js must handle it."""
    if scenario == "authentication" and form.get("return_url"):
        return {
            "type": "redirect_to_url",
            "redirect_to_url": {"url": ISSUER_PAGE + pi_id, "return_url": form["return_url"]},
        }
    return {"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect"}}


def create_payment_method(form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    number = form["card[number]"]
    if number == "4000000000000000":
        return 402, card_error("incorrect_number", None, None)
    scenario = CARDS.get(number, "approved")
    return 200, {
        "id": f"pm_{scenario}",
        "object": "payment_method",
        "type": "card",
        "card": {
            "brand": "visa",
            "last4": number[-4:],
            "exp_month": int(form["card[exp_month]"]),
            "exp_year": int(form["card[exp_year]"]),
            "checks": {
                "address_line1_check": None,
                "address_postal_code_check": None,
                "cvc_check": "fail" if scenario == "risky" else "pass",
            },
        },
    }


def create_payment_intent(pi_id: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    scenario = form["payment_method"].removeprefix("pm_")
    if scenario in DECLINES:
        code, decline_code = DECLINES[scenario]
        failed = intent(pi_id, form, "requires_payment_method")
        return 402, card_error(code, decline_code, failed)
    if scenario in ERRORS:
        return ERRORS[scenario]
    if scenario == "slow":
        time.sleep(SLOW_SECONDS)
    manual = form.get("capture_method") == "manual"
    status = STATUSES.get(scenario) or ("requires_capture" if manual else "succeeded")
    if status == "requires_action":
        return 200, intent(pi_id, form, status, next_action=next_action(scenario, pi_id, form))
    return 200, intent(pi_id, form, status)


def create_refund(re_id: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    failed = form["payment_intent"].startswith("pi_refund_fails")
    refund: dict[str, Any] = {
        "id": re_id,
        "object": "refund",
        "amount": int(form["amount"]),
        "payment_intent": form["payment_intent"],
        "status": "failed" if failed else "succeeded",
    }
    if failed:  # Stripe only sends failure_reason on failed refunds
        refund["failure_reason"] = "expired_or_canceled_card"
    return 200, refund


# PaymentMethods the browser created with Stripe.js / Elements (GET /v1/payment_methods/{id}).
ELEMENTS_METHODS: dict[str, dict[str, Any]] = {
    "pm_1Elements": {"customer": None, "type": "card", "cvc_check": "pass"},
    "pm_1Risky": {"customer": None, "type": "card", "cvc_check": "fail"},
    "pm_1Attached": {"customer": "cus_9", "type": "card", "cvc_check": "pass"},
    "pm_1Sepa": {"customer": None, "type": "sepa_debit"},
}


def retrieve_payment_method(path: str) -> tuple[int, dict[str, Any]]:
    match = re.fullmatch(r"/v1/payment_methods/(\w+)", path)
    known = ELEMENTS_METHODS.get(match.group(1)) if match else None
    if match is None or known is None:
        return 404, {"error": {"type": "invalid_request_error", "code": "resource_missing",
                               "message": "No such PaymentMethod"}}  # fmt: skip
    method: dict[str, Any] = {
        "id": match.group(1), "object": "payment_method", "type": known["type"],
        "customer": known["customer"],
    }  # fmt: skip
    if known["type"] == "card":
        method["card"] = {
            "brand": "mastercard", "last4": "4444", "exp_month": 9, "exp_year": 2032,
            "fingerprint": "Xt5EWLLDS7FJjR1c", "checks": {"cvc_check": known["cvc_check"]},
        }  # fmt: skip
    return 200, method


def answer(path: str, form: dict[str, str], n: int) -> tuple[int, dict[str, Any]]:
    """What Stripe would answer (before idempotent replay is applied)."""
    if path == "/v1/payment_methods":
        return create_payment_method(form)
    if path == "/v1/payment_intents":
        return create_payment_intent(f"pi_{form['payment_method'].removeprefix('pm_')}_{n}", form)
    if action := re.fullmatch(r"/v1/payment_intents/(\w+)/(capture|cancel)", path):
        pi_id, verb = action.groups()
        if verb == "cancel":
            return 200, intent(pi_id, {"amount": "5000"}, "canceled")
        captured = intent(pi_id, {"amount": "5000"}, "succeeded")
        captured["amount_received"] = int(form.get("amount_to_capture", "5000"))
        return 200, captured
    if path == "/v1/refunds":
        return create_refund(f"re_{n}", form)
    return 404, {"error": {"type": "invalid_request_error", "message": f"no route {path}"}}


@pytest.fixture(scope="module")
def stripe_server() -> Iterator[FakeStripe]:
    """One local Stripe per module; each test gets it with its records cleared."""
    fake = FakeStripe(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length).decode()
            form = {k: v[0] for k, v in urllib.parse.parse_qs(body).items()}
            path = urllib.parse.urlsplit(self.path).path
            fake.requests.append(Seen("POST", path, dict(self.headers.items()), form))
            key = self.headers.get("Idempotency-Key")
            flaky = form.get("payment_method") == "pm_flaky"
            if key and key in fake.replies:  # Stripe replays the first answer for a key
                status, reply = fake.replies[key]
            elif flaky and key not in fake.keys_seen:
                fake.keys_seen.add(key or "")
                status, reply = 500, {"error": {"type": "api_error", "message": "lost"}}
            else:
                status, reply = answer(path, form, len(fake.requests))
                if key and status != 500:
                    fake.replies[key] = (status, reply)
            data = json.dumps(reply).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", f"req_{len(fake.requests)}")
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the timeout test)

        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            fake.requests.append(Seen("GET", path, dict(self.headers.items()), {}))
            status, reply = retrieve_payment_method(path)
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def fake_stripe(stripe_server: FakeStripe) -> FakeStripe:
    stripe_server.requests.clear()
    stripe_server.replies.clear()
    stripe_server.keys_seen.clear()
    return stripe_server


@pytest.fixture
def gateway(fake_stripe: FakeStripe) -> StripeGateway:
    return StripeGateway(API_KEY, WEBHOOK_SECRET, api_base=fake_stripe.url, timeout=0.5)


def token(gateway: StripeGateway, number: str) -> str:
    return gateway.tokenise(number, 12, 2030, "123").token


# --- tokenise -------------------------------------------------------------------------------


def test_tokenise_creates_a_payment_method_and_keeps_only_its_id(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    tokenised = gateway.tokenise("4242424242424242", 12, 2030, "123")
    assert tokenised.token == "pm_approved"
    assert tokenised.risk_flag is False
    seen = fake_stripe.last("/v1/payment_methods")
    assert seen.form["type"] == "card"
    assert seen.form["card[exp_month]"] == "12"
    assert seen.headers["Authorization"] == f"Bearer {API_KEY}"


def test_a_failed_issuer_check_sets_the_risk_flag(gateway: StripeGateway) -> None:
    assert gateway.tokenise("4000000000000101", 12, 2030, "123").risk_flag is True


def test_card_details_stripe_refuses_raise_card_rejected(gateway: StripeGateway) -> None:
    with pytest.raises(CardRejectedError) as raised:
        gateway.tokenise("4000000000000000", 12, 2030, "123")
    assert raised.value.code == "card_declined"


# --- attach_token (cards by Stripe.js / Elements) --------------------------------------------


def test_attach_token_retrieves_the_payment_method_and_takes_its_card(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    attached = gateway.attach_token("pm_1Elements")
    assert attached == AttachedCard(
        token="pm_1Elements", risk_flag=False, brand="mastercard", last4="4444", exp_month=9,
        exp_year=2032, fingerprint="Xt5EWLLDS7FJjR1c",
    )  # fmt: skip
    seen = fake_stripe.last("/v1/payment_methods/pm_1Elements")
    assert seen.method == "GET"
    assert seen.headers["Authorization"] == f"Bearer {API_KEY}"
    assert gateway.attach_token("pm_1Risky").risk_flag is True


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("pm_1Attached", "attached"),  # attached to a customer already
        ("pm_1Unknown", "unknown"),  # Stripe: 404 resource_missing
        ("pm_1Sepa", "unknown"),  # not a card
        ("tok_sandbox.visa", "unknown"),  # not a PaymentMethod id: never sent
        ("pm_../../v1/charges", "unknown"),
    ],
)
def test_attach_token_refuses_what_is_no_unattached_card(
    gateway: StripeGateway, fake_stripe: FakeStripe, token: str, reason: str
) -> None:
    with pytest.raises(TokenRejectedError) as raised:
        gateway.attach_token(token)
    assert raised.value.reason == reason
    if not token.startswith("pm_1"):
        assert fake_stripe.requests == []


def test_attach_token_when_stripe_is_down_is_unavailable(fake_stripe: FakeStripe) -> None:
    closed = StripeGateway(API_KEY, WEBHOOK_SECRET, api_base="http://127.0.0.1:9", timeout=0.5)
    with pytest.raises(GatewayUnavailableError):
        closed.attach_token("pm_1Elements")


# --- authorise ------------------------------------------------------------------------------


@pytest.mark.parametrize(("capture", "status"), [(True, "succeeded"), (False, "requires_capture")])
def test_authorise_creates_and_confirms_a_payment_intent_with_our_key_and_metadata(
    gateway: StripeGateway, fake_stripe: FakeStripe, capture: bool, status: str
) -> None:
    pm = token(gateway, "4242424242424242")
    charge = gateway.authorise(
        pm, 2500, "EUR", idempotency_key="idem-1", capture=capture, metadata={"payment_id": "pay_9"}
    )
    assert charge.status == status
    assert charge.id is not None and charge.id.startswith("pi_")
    assert charge.amount_captured == (2500 if capture else 0)
    seen = fake_stripe.last("/v1/payment_intents")
    assert seen.headers["Idempotency-Key"] == "idem-1"
    assert seen.form["amount"] == "2500"
    assert seen.form["currency"] == "eur"
    assert seen.form["payment_method"] == "pm_approved"
    assert seen.form["confirm"] == "true"
    assert seen.form["metadata[payment_id]"] == "pay_9"
    assert seen.form.get("capture_method") == (None if capture else "manual")


def test_the_same_key_returns_the_same_payment_intent(gateway: StripeGateway) -> None:
    pm = token(gateway, "4242424242424242")
    first = gateway.authorise(pm, 100, "USD", idempotency_key="same", capture=True, metadata={})
    again = gateway.authorise(pm, 100, "USD", idempotency_key="same", capture=True, metadata={})
    other = gateway.authorise(pm, 100, "USD", idempotency_key="other", capture=True, metadata={})
    assert first == again
    assert other.id != first.id


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("4000000000000002", "card_declined"),
        ("4000000000009995", "insufficient_funds"),
        ("4000000000000069", "expired_card"),
    ],
)
def test_a_declined_card_is_a_failed_charge_with_our_code(
    gateway: StripeGateway, number: str, code: str
) -> None:
    charge = gateway.authorise(
        token(gateway, number), 100, "USD", idempotency_key="k", capture=True, metadata={}
    )
    assert (charge.status, charge.failure_code) == ("failed", code)
    assert charge.failure_message
    assert charge.id is not None and charge.id.startswith("pi_")


@pytest.mark.parametrize("capture", [True, False])
def test_a_card_asking_for_3ds_requires_action_with_the_issuers_page(
    gateway: StripeGateway, fake_stripe: FakeStripe, capture: bool
) -> None:
    charge = gateway.authorise(
        token(gateway, "4000000000003063"), 100, "EUR", idempotency_key="k3ds",
        capture=capture, metadata={"payment_id": "pay_3ds"},
    )  # fmt: skip
    assert (charge.status, charge.failure_code, charge.amount_captured) == (
        "requires_action", None, 0,
    )  # fmt: skip
    assert charge.id is not None
    assert charge.action_url == ISSUER_PAGE + charge.id
    seen = fake_stripe.last("/v1/payment_intents")
    assert seen.form["return_url"] == "http://127.0.0.1:3000/#/3ds-return"
    assert seen.form["confirm"] == "true"


def test_the_return_url_is_the_configured_one(fake_stripe: FakeStripe) -> None:
    gateway = StripeGateway(
        API_KEY, WEBHOOK_SECRET, api_base=fake_stripe.url, timeout=0.5,
        return_url="https://app.example.com/#/3ds-return",
    )  # fmt: skip
    charge = gateway.authorise(
        token(gateway, "4000000000003063"), 100, "EUR", idempotency_key="r", capture=True,
        metadata={},
    )  # fmt: skip
    assert charge.status == "requires_action"
    assert fake_stripe.last("/v1/payment_intents").form["return_url"] == (
        "https://app.example.com/#/3ds-return"
    )
    with pytest.raises(ValueError, match="http"):
        StripeGateway(API_KEY, WEBHOOK_SECRET, return_url="javascript:alert(1)")


def test_an_action_that_is_no_redirect_fails_as_authentication_failed(
    gateway: StripeGateway,
) -> None:
    charge = gateway.authorise(
        token(gateway, "4000000000003055"), 100, "EUR", idempotency_key="sdk", capture=True,
        metadata={},
    )  # fmt: skip
    assert (charge.status, charge.failure_code) == ("failed", "authentication_failed")
    assert charge.failure_message and charge.action_url is None


def test_a_processing_payment_intent_is_processing(gateway: StripeGateway) -> None:
    charge = gateway.authorise(
        token(gateway, "4000000000003220"),
        100,
        "USD",
        idempotency_key="k",
        capture=True,
        metadata={},
    )
    assert charge.status == "processing"


@pytest.mark.parametrize("number", ["4000000000000010", "4000000000000077"])
def test_a_5xx_or_a_conflict_after_sending_is_an_unknown_outcome(
    gateway: StripeGateway, number: str
) -> None:
    with pytest.raises(GatewayOutcomeUnknownError):
        gateway.authorise(
            token(gateway, number), 100, "USD", idempotency_key="k", capture=True, metadata={}
        )


def test_an_unknown_outcome_is_settled_by_asking_again_with_the_same_key(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    # Given Stripe answers 500 the first time it sees a key
    pm = token(gateway, "4000000000000036")
    # When the charge is retried
    charge = with_retries(
        lambda: gateway.authorise(
            pm, 700, "USD", idempotency_key="k-flaky", capture=True, metadata={}
        ),
        attempts=3,
        base_delay=0,
    )
    # Then the second attempt, with the same key, gives the answer
    assert charge.status == "succeeded"
    keys = [r.headers["Idempotency-Key"] for r in fake_stripe.requests if r.form.get("amount")]
    assert keys == ["k-flaky", "k-flaky"]


def test_a_slow_answer_times_out_as_an_unknown_outcome(gateway: StripeGateway) -> None:
    pm = token(gateway, "4000000000000044")
    started = time.monotonic()
    with pytest.raises(GatewayOutcomeUnknownError):
        gateway.authorise(pm, 100, "USD", idempotency_key="k", capture=True, metadata={})
    assert time.monotonic() - started < SLOW_SECONDS


def test_the_sdk_does_not_retry_on_its_own(gateway: StripeGateway, fake_stripe: FakeStripe) -> None:
    pm = token(gateway, "4000000000000010")
    with pytest.raises(GatewayOutcomeUnknownError):
        gateway.authorise(pm, 100, "USD", idempotency_key="k", capture=True, metadata={})
    assert len([r for r in fake_stripe.requests if r.path == "/v1/payment_intents"]) == 1


@pytest.mark.parametrize("number", ["4000000000000051", "4000000000000085"])
def test_a_refused_request_is_unavailable_and_ends_as_gateway_error(
    gateway: StripeGateway, number: str
) -> None:
    pm = token(gateway, number)
    with pytest.raises(GatewayUnavailableError):
        gateway.authorise(pm, 100, "USD", idempotency_key="k", capture=True, metadata={})
    charge = with_retries(
        lambda: gateway.authorise(pm, 100, "USD", idempotency_key="k", capture=True, metadata={}),
        attempts=2,
        base_delay=0,
    )
    assert (charge.status, charge.failure_code) == ("failed", "gateway_error")


def test_a_stripe_that_cannot_be_reached_is_unavailable() -> None:
    # Given a port nobody listens on
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = StripeGateway(API_KEY, WEBHOOK_SECRET, api_base=f"http://127.0.0.1:{port}")
    with pytest.raises(GatewayUnavailableError):
        gateway.authorise("pm_x", 100, "USD", idempotency_key="k", capture=True, metadata={})
    with pytest.raises(GatewayUnavailableError):
        gateway.tokenise("4242424242424242", 12, 2030, "123")


def test_an_injected_client_is_used(fake_stripe: FakeStripe) -> None:
    client = stripe.StripeClient(
        "sk_test_injected", base_addresses={"api": fake_stripe.url}, max_network_retries=0
    )
    gateway = StripeGateway("unused", WEBHOOK_SECRET, client=client)
    gateway.tokenise("4242424242424242", 12, 2030, "123")
    assert fake_stripe.last("/v1/payment_methods").headers["Authorization"] == (
        "Bearer sk_test_injected"
    )


# --- capture, void, refund ------------------------------------------------------------------


def test_capture_takes_the_amount_to_capture_and_our_key(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    charge = gateway.capture("pi_auth_1", 3000, idempotency_key="cap-1")
    assert (charge.id, charge.status, charge.amount_captured) == ("pi_auth_1", "succeeded", 3000)
    seen = fake_stripe.last("/v1/payment_intents/pi_auth_1/capture")
    assert seen.form == {"amount_to_capture": "3000"}
    assert seen.headers["Idempotency-Key"] == "cap-1"


def test_void_cancels_the_payment_intent(gateway: StripeGateway, fake_stripe: FakeStripe) -> None:
    charge = gateway.void("pi_auth_2", idempotency_key="void-1")
    assert (charge.id, charge.status) == ("pi_auth_2", "canceled")
    assert (
        fake_stripe.last("/v1/payment_intents/pi_auth_2/cancel").headers["Idempotency-Key"]
        == "void-1"
    )


def test_refund_creates_a_refund_on_the_payment_intent(
    gateway: StripeGateway, fake_stripe: FakeStripe
) -> None:
    refund = gateway.refund("pi_paid_1", 1200, idempotency_key="ref-1")
    assert refund.status == "succeeded"
    assert refund.id is not None and refund.id.startswith("re_")
    seen = fake_stripe.last("/v1/refunds")
    assert seen.form == {"payment_intent": "pi_paid_1", "amount": "1200"}
    assert seen.headers["Idempotency-Key"] == "ref-1"


def test_a_failed_refund_carries_stripes_reason(gateway: StripeGateway) -> None:
    refund = gateway.refund("pi_refund_fails_1", 100, idempotency_key="ref-2")
    assert refund == GatewayRefund(
        id=refund.id, status="failed", failure_code="expired_or_canceled_card"
    )


# --- webhooks -------------------------------------------------------------------------------


def stripe_event(kind: str, **pi: Any) -> bytes:
    obj = {
        "id": "pi_123",
        "object": "payment_intent",
        "amount": 2500,
        "amount_received": 2500 if kind == "payment_intent.succeeded" else 0,
        "last_payment_error": None,
        "metadata": {"payment_id": "pay_77"},
        "status": "succeeded",
        **pi,
    }
    event = {
        "id": "evt_1Abc",
        "object": "event",
        "api_version": "2025-01-27.acacia",
        "created": NOW,
        "data": {"object": obj},
        "livemode": False,
        "type": kind,
    }
    return json.dumps(event, indent=2).encode()


def stripe_signature(payload: bytes, t: int, secret: str = WEBHOOK_SECRET) -> str:
    """Stripe's scheme, computed independently of our code."""
    digest = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={digest},v0=ignored"


@pytest.mark.parametrize(
    ("kind", "fields", "expected"),
    [
        ("payment_intent.succeeded", {}, ("succeeded", None, 2500)),
        (
            "payment_intent.payment_failed",
            {
                "status": "requires_payment_method",
                "last_payment_error": {
                    "code": "card_declined",
                    "decline_code": "insufficient_funds",
                },
            },
            ("failed", "insufficient_funds", 0),
        ),
        (
            "payment_intent.amount_capturable_updated",
            {"status": "requires_capture"},
            ("requires_capture", None, 0),
        ),
        ("payment_intent.canceled", {"status": "canceled"}, ("canceled", None, 0)),
        (  # 3-D Secure failed (or was abandoned at the issuer's page)
            "payment_intent.payment_failed",
            {
                "status": "requires_payment_method",
                "last_payment_error": {"code": "payment_intent_authentication_failure"},
            },
            ("failed", "authentication_failed", 0),
        ),
        (  # 3-D Secure passed, the payment is processing
            "payment_intent.processing",
            {"status": "processing"},
            ("processing", None, 0),
        ),
    ],
)
def test_payment_intent_events_are_verified_and_mapped(
    gateway: StripeGateway,
    kind: str,
    fields: dict[str, Any],
    expected: tuple[str, str | None, int],
) -> None:
    payload = stripe_event(kind, **fields)
    event = gateway.parse_webhook(payload, stripe_signature(payload, NOW - 10), NOW)
    assert event is not None
    assert (event.id, event.type, event.charge_id, event.payment_id) == (
        "evt_1Abc",
        kind,
        "pi_123",
        "pay_77",
    )
    assert (event.status, event.failure_code, event.amount_captured) == expected


def test_an_event_without_our_metadata_has_no_payment_id(gateway: StripeGateway) -> None:
    payload = stripe_event("payment_intent.succeeded", metadata={})
    event = gateway.parse_webhook(payload, stripe_signature(payload, NOW), NOW)
    assert event is not None and event.payment_id is None


def test_other_event_types_are_verified_and_ignored(gateway: StripeGateway) -> None:
    payload = stripe_event("payment_intent.created")
    assert gateway.parse_webhook(payload, stripe_signature(payload, NOW), NOW) is None


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "t=1,v1=deadbeef",
        "nonsense",
        stripe_signature(stripe_event("payment_intent.succeeded"), NOW, secret="whsec_other"),
        stripe_signature(stripe_event("payment_intent.succeeded"), NOW - 301),
        stripe_signature(stripe_event("payment_intent.succeeded"), NOW + 301),
    ],
    ids=["missing", "empty", "bad", "malformed", "wrong-secret", "stale", "future"],
)
def test_a_bad_stale_or_missing_stripe_signature_is_refused(
    gateway: StripeGateway, header: str | None
) -> None:
    payload = stripe_event("payment_intent.succeeded")
    with pytest.raises(WebhookSignatureError):
        gateway.parse_webhook(payload, header, NOW)


def test_a_tampered_stripe_event_is_refused(gateway: StripeGateway) -> None:
    payload = stripe_event("payment_intent.succeeded")
    header = stripe_signature(payload, NOW)
    with pytest.raises(WebhookSignatureError):
        gateway.parse_webhook(payload.replace(b"pay_77", b"pay_78"), header, NOW)


def test_a_signed_body_that_is_not_an_event_is_refused(gateway: StripeGateway) -> None:
    payload = b"{not json"
    with pytest.raises(WebhookPayloadError):
        gateway.parse_webhook(payload, stripe_signature(payload, NOW), NOW)


# --- card updates ---------------------------------------------------------------------------


def _card_updated(**card: Any) -> bytes:
    method = {
        "id": "pm_1Elements", "object": "payment_method", "type": "card", "customer": None,
        "card": {"brand": "visa", "last4": "1881", "exp_month": 7, "exp_year": 2034, **card},
    }  # fmt: skip
    event = {"id": "evt_1Card", "object": "event", "api_version": "2024-06-20",
             "data": {"object": method}, "livemode": False,
             "type": "payment_method.automatically_updated"}  # fmt: skip
    return json.dumps(event).encode()


def test_a_card_update_event_is_verified_and_mapped(gateway: StripeGateway) -> None:
    payload = _card_updated()
    event = gateway.parse_webhook(payload, stripe_signature(payload, NOW), NOW)
    assert event == CardUpdate(
        id="evt_1Card", type="payment_method.automatically_updated", token="pm_1Elements",
        last4="1881", exp_month=7, exp_year=2034, brand="visa",
    )  # fmt: skip
    # ... and one that is not signed by the secret is refused like any other
    with pytest.raises(WebhookSignatureError):
        gateway.parse_webhook(payload, stripe_signature(payload, NOW, "whsec_other"), NOW)


@pytest.mark.parametrize(
    "card", [{"last4": "18"}, {"exp_month": 13}, {"exp_year": "2034"}, {"last4": None}]
)
def test_a_card_update_without_a_valid_card_is_a_payload_error(
    gateway: StripeGateway, card: dict[str, Any]
) -> None:
    payload = _card_updated(**card)
    with pytest.raises(WebhookPayloadError):
        gateway.parse_webhook(payload, stripe_signature(payload, NOW), NOW)
