"""The sandbox gateway across the whole interface: every card of API.md's table through
authorise, capture, void and refund; determinism; the processing card's scheduled webhook;
and how get_gateway builds the configured adapter."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cashew import aws, gateways
from cashew.gateways import get_gateway, sandbox
from cashew.gateways.base import (
    Charge,
    GatewayRefund,
    GatewayUnavailableError,
    WebhookError,
    sign_webhook,
    with_retries,
)
from cashew.gateways.sandbox import SandboxGateway, signed_delivery
from cashew.gateways.stripe_gateway import StripeGateway

APPROVED = ["4242424242424242", "5555555555554444", "4100000000000019"]
DECLINED = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
}
ERROR = "4000000000000119"
PROCESSING = "4000000000003220"
NOW = 1_750_000_000
SECRET = "whsec_sandbox_local"


class RecordingTransport:
    """Stands in for the local stack's scheduler: records every schedule request."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.fail = fail
        self.calls: list[tuple[str, dict[str, Any], float]] = []

    def __call__(self, url: str, body: bytes, timeout: float) -> None:
        self.calls.append((url, json.loads(body), timeout))
        if self.fail is not None:
            raise self.fail


def authorise(
    gateway: SandboxGateway,
    number: str,
    *,
    key: str = "key-1",
    capture: bool = True,
    amount: int = 2500,
    payment_id: str = "pay_1",
) -> Charge:
    token = gateway.tokenise(number, 12, 2030, "123").token
    return gateway.authorise(
        token,
        amount,
        "USD",
        idempotency_key=key,
        capture=capture,
        metadata={"payment_id": payment_id},
    )


@pytest.fixture
def gateway() -> SandboxGateway:
    return SandboxGateway()


# --- authorise ------------------------------------------------------------------------------


@pytest.mark.parametrize("number", APPROVED)
def test_approved_cards_capture_the_whole_amount_at_once(
    gateway: SandboxGateway, number: str
) -> None:
    charge = authorise(gateway, number, amount=1234)
    assert charge.status == "succeeded"
    assert charge.amount_captured == 1234
    assert charge.id is not None and charge.id.startswith("ch_sbx_")


@pytest.mark.parametrize("number", APPROVED)
def test_approved_cards_authorise_only_when_capture_is_false(
    gateway: SandboxGateway, number: str
) -> None:
    charge = authorise(gateway, number, capture=False)
    assert (charge.status, charge.amount_captured, charge.failure_code) == (
        "requires_capture",
        0,
        None,
    )


@pytest.mark.parametrize(("number", "code"), DECLINED.items())
def test_declined_cards_fail_with_their_code_and_still_get_a_charge_id(
    gateway: SandboxGateway, number: str, code: str
) -> None:
    charge = authorise(gateway, number)
    assert (charge.status, charge.failure_code) == ("failed", code)
    assert charge.id is not None
    assert charge.amount_captured is None


def test_the_error_card_fails_every_authorisation(gateway: SandboxGateway) -> None:
    token = gateway.tokenise(ERROR, 12, 2030, "123").token
    for capture in (True, False):
        with pytest.raises(GatewayUnavailableError):
            gateway.authorise(token, 100, "USD", idempotency_key="k", capture=capture, metadata={})


# --- determinism ----------------------------------------------------------------------------


def test_charge_ids_are_derived_from_the_key_not_from_the_token_or_the_instance() -> None:
    # Given two sandbox instances (two Lambda containers) and two tokens of the same card
    first = authorise(SandboxGateway(), "4242424242424242", key="same-key")
    again = authorise(SandboxGateway(), "4242424242424242", key="same-key")
    other = authorise(SandboxGateway(), "4242424242424242", key="other-key")
    # Then the same key gives the same charge, another key another charge
    assert first == again
    assert first.id != other.id
    assert first.id is not None and len(first.id) == len("ch_sbx_") + 24


def test_tokens_carry_the_scenario_but_never_the_card(gateway: SandboxGateway) -> None:
    token = gateway.tokenise(PROCESSING, 12, 2030, "999").token
    assert token.startswith("tok_sbx_processing_")
    assert PROCESSING not in token


# --- capture, void, refund ------------------------------------------------------------------


@pytest.mark.parametrize("number", [*APPROVED, PROCESSING])
def test_an_authorisation_can_be_captured_in_part(gateway: SandboxGateway, number: str) -> None:
    charge = authorise(gateway, number, capture=False, amount=5000)
    assert charge.id is not None
    # When capturing less than authorised
    captured = gateway.capture(charge.id, 3000, idempotency_key="cap-1")
    # Then the charge is succeeded with what was captured
    assert captured == Charge(id=charge.id, status="succeeded", amount_captured=3000)


@pytest.mark.parametrize("number", [*APPROVED, PROCESSING])
def test_an_authorisation_can_be_voided(gateway: SandboxGateway, number: str) -> None:
    charge = authorise(gateway, number, capture=False)
    assert charge.id is not None
    voided = gateway.void(charge.id, idempotency_key="void-1")
    assert (voided.id, voided.status, voided.amount_captured) == (charge.id, "canceled", 0)


@pytest.mark.parametrize("number", APPROVED)
def test_a_captured_charge_can_be_refunded_with_a_deterministic_id(
    gateway: SandboxGateway, number: str
) -> None:
    charge = authorise(gateway, number)
    assert charge.id is not None
    refund = gateway.refund(charge.id, 1000, idempotency_key="ref-1")
    again = gateway.refund(charge.id, 1000, idempotency_key="ref-1")
    other = gateway.refund(charge.id, 1000, idempotency_key="ref-2")
    assert refund == again == GatewayRefund(id=refund.id, status="succeeded")
    assert refund.id is not None and refund.id.startswith("re_sbx_")
    assert other.id != refund.id


@pytest.mark.parametrize(
    "call",
    [
        lambda g, cid: g.capture(cid, 100, idempotency_key="k"),
        lambda g, cid: g.void(cid, idempotency_key="k"),
        lambda g, cid: g.refund(cid, 100, idempotency_key="k"),
    ],
    ids=["capture", "void", "refund"],
)
def test_the_error_scenario_fails_capture_void_and_refund_too(
    gateway: SandboxGateway, call: Any
) -> None:
    with pytest.raises(GatewayUnavailableError):
        call(gateway, sandbox.OUTAGE_CHARGE_PREFIX + "0" * 24)


@pytest.mark.parametrize(
    "call",
    [
        lambda g: g.capture("pi_123", 100, idempotency_key="k"),
        lambda g: g.void("ch_other", idempotency_key="k"),
        lambda g: g.refund("", 100, idempotency_key="k"),
        lambda g: g.capture("ch_sbx_" + "a" * 24, 0, idempotency_key="k"),
        lambda g: g.refund("ch_sbx_" + "a" * 24, -5, idempotency_key="k"),
    ],
)
def test_foreign_charge_ids_and_non_positive_amounts_are_refused(
    gateway: SandboxGateway, call: Any
) -> None:
    with pytest.raises(ValueError):
        call(gateway)


def test_a_refund_during_an_outage_fails_after_bounded_retries(gateway: SandboxGateway) -> None:
    calls = 0

    def refund() -> GatewayRefund:
        nonlocal calls
        calls += 1
        return gateway.refund(sandbox.OUTAGE_CHARGE_PREFIX + "1" * 24, 100, idempotency_key="k")

    failed = GatewayRefund(id=None, status="failed", failure_code="gateway_error")
    assert with_retries(refund, attempts=3, failure=failed, base_delay=0) is failed
    assert calls == 3


# --- the processing card --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("capture", "status", "captured"), [(True, "succeeded", 2500), (False, "requires_capture", 0)]
)
def test_the_processing_card_schedules_its_signed_outcome(
    capture: bool, status: str, captured: int
) -> None:
    # Given a sandbox that knows where to schedule webhooks
    transport = RecordingTransport()
    gateway = SandboxGateway(webhook_url="http://127.0.0.1:3000/_schedule", transport=transport)
    # When a processing card is charged
    charge = authorise(gateway, PROCESSING, capture=capture, payment_id="pay_42", key="k-42")
    # Then the answer is processing, and one schedule request was sent with a short timeout
    assert charge.status == "processing"
    assert len(transport.calls) == 1
    url, body, timeout = transport.calls[0]
    assert url == "http://127.0.0.1:3000/_schedule"
    assert 0 < timeout <= 5
    assert body["delay_seconds"] == 3
    event = body["event"]
    assert event["id"].startswith("evt_sbx_")
    assert event["type"] == "charge.succeeded"
    assert event["data"] == {
        "charge_id": charge.id,
        "payment_id": "pay_42",
        "status": status,
        "failure_code": None,
        "amount_captured": captured,
    }
    # And the event, delivered signed, parses back into the charge's outcome
    payload, header = signed_delivery(event, SECRET, NOW + 3)
    parsed = gateway.parse_webhook(payload, header, NOW + 4)
    assert parsed is not None
    assert (parsed.id, parsed.charge_id, parsed.payment_id, parsed.status) == (
        event["id"],
        charge.id,
        "pay_42",
        status,
    )
    assert parsed.amount_captured == captured


def test_asking_again_schedules_the_same_event_id_so_the_webhook_is_deduplicated() -> None:
    transport = RecordingTransport()
    gateway = SandboxGateway(webhook_url="http://127.0.0.1:3000/_schedule", transport=transport)
    authorise(gateway, PROCESSING, key="k")
    authorise(gateway, PROCESSING, key="k")
    authorise(gateway, PROCESSING, key="other")
    ids = [call[1]["event"]["id"] for call in transport.calls]
    assert ids[0] == ids[1] != ids[2]


@pytest.mark.parametrize("number", [*APPROVED, *DECLINED])
def test_only_the_processing_card_schedules_a_webhook(number: str) -> None:
    transport = RecordingTransport()
    gateway = SandboxGateway(webhook_url="http://127.0.0.1:3000/_schedule", transport=transport)
    authorise(gateway, number)
    assert transport.calls == []


def test_without_a_webhook_url_nothing_is_scheduled() -> None:
    transport = RecordingTransport()
    charge = authorise(SandboxGateway(transport=transport), PROCESSING)
    assert charge.status == "processing"
    assert transport.calls == []


@pytest.mark.parametrize("error", [ConnectionRefusedError(), TimeoutError(), OSError("down")])
def test_a_scheduler_failure_is_logged_and_does_not_fail_the_charge(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    warnings: list[tuple[str, dict[str, Any]]] = []
    monkeypatch.setattr(sandbox.logger, "warning", lambda msg, extra: warnings.append((msg, extra)))
    gateway = SandboxGateway(
        webhook_url="http://127.0.0.1:1/_schedule", transport=RecordingTransport(fail=error)
    )
    charge = authorise(gateway, PROCESSING)
    assert charge.status == "processing"
    assert len(warnings) == 1
    assert warnings[0][1]["charge_id"] == charge.id


def test_the_default_transport_posts_json_with_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    class Response:
        def __enter__(self) -> Response:
            return self

        def __exit__(self, *args: object) -> None:
            return None

        def read(self) -> bytes:
            return b"{}"

    def urlopen(request: Any, timeout: float) -> Response:
        seen.update(
            url=request.full_url,
            method=request.get_method(),
            type=request.get_header("Content-type"),
            body=json.loads(request.data),
            timeout=timeout,
        )
        return Response()

    monkeypatch.setattr(sandbox.urllib.request, "urlopen", urlopen)
    gateway = SandboxGateway(webhook_url="http://127.0.0.1:3000/_schedule")
    authorise(gateway, PROCESSING)
    assert seen["url"] == "http://127.0.0.1:3000/_schedule"
    assert (seen["method"], seen["type"]) == ("POST", "application/json")
    assert seen["body"]["delay_seconds"] == 3
    assert seen["timeout"] == sandbox.SCHEDULE_TIMEOUT_SECONDS


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://host/x", "127.0.0.1:3000"])
def test_the_webhook_url_must_be_http(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        SandboxGateway(webhook_url=url)


# --- get_gateway ----------------------------------------------------------------------------


GATEWAY_SECRET = "whsec_" + "c" * 58  # as generated: 64 characters


def _gateway_secret(
    monkeypatch: pytest.MonkeyPatch, value: dict[str, str], asked: list[str] | None = None
) -> None:
    """The stack's GatewaySecret holds `value` (Secrets Manager stands in for by a stub)."""
    monkeypatch.setenv("CASHEW_GATEWAY_SECRET_ID", "cashew/gateway")

    def secret_json(secret_id: str, max_age: int) -> dict[str, Any]:
        assert (secret_id, max_age) == ("cashew/gateway", 300)
        if asked is not None:
            asked.append(secret_id)
        return dict(value)

    monkeypatch.setattr(aws, "secret_json", secret_json)


def test_the_sandbox_verifies_webhooks_with_the_gateway_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a GatewaySecret whose webhook_secret is not the documented default
    _gateway_secret(monkeypatch, {"api_key": "", "webhook_secret": GATEWAY_SECRET})
    gateway = get_gateway()
    payload = json.dumps(
        {
            "id": "evt_sbx_1",
            "type": "charge.failed",
            "data": {"charge_id": "ch_sbx_1", "status": "failed", "failure_code": "card_declined"},
        }
    ).encode()
    # Then a webhook signed with it verifies, and one signed with the default does not
    event = gateway.parse_webhook(payload, sign_webhook(payload, GATEWAY_SECRET, NOW), NOW)
    assert event is not None
    assert (event.status, event.failure_code, event.payment_id) == ("failed", "card_declined", None)
    with pytest.raises(WebhookError):
        gateway.parse_webhook(payload, sign_webhook(payload, SECRET, NOW), NOW)


def test_the_stripe_adapter_takes_its_keys_from_secrets_manager(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given Stripe's keys in the GatewaySecret
    asked: list[str] = []
    stripe_secret = "whsec_" + "s" * 32
    _gateway_secret(monkeypatch, {"api_key": "sk_test_123", "webhook_secret": stripe_secret}, asked)
    monkeypatch.setenv("CASHEW_GATEWAY", "stripe")
    monkeypatch.setenv("CASHEW_STRIPE_API_BASE", "http://127.0.0.1:12111")
    # When the configured gateway is built
    gateway = get_gateway()
    # Then it is the Stripe adapter, keyed from that secret
    assert isinstance(gateway, StripeGateway)
    assert asked == ["cashew/gateway"]
    assert gateway._webhook_secret == stripe_secret


def test_the_gateway_needs_its_secret_id() -> None:
    with pytest.raises(gateways.GatewayConfigurationError, match="CASHEW_GATEWAY_SECRET_ID"):
        get_gateway()


def test_each_adapter_names_its_signature_header() -> None:
    assert SandboxGateway().signature_header == "Gateway-Signature"
    assert StripeGateway("sk_test_x", "whsec_x").signature_header == "Stripe-Signature"
