"""`Gateway-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`: what is accepted and what
is refused (API.md: bad signature or older than 5 minutes → 400), and the sandbox's events."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest

from cashew.gateways import base
from cashew.gateways.base import (
    WebhookError,
    WebhookPayloadError,
    WebhookSignatureError,
    sign_webhook,
    verify_signature,
)
from cashew.gateways.sandbox import SandboxGateway, signed_delivery

SECRET = "whsec_sandbox_local"
NOW = 1_750_000_000


def event(**data: Any) -> dict[str, Any]:
    return {
        "id": "evt_sbx_0123",
        "type": "charge.succeeded",
        "data": {
            "charge_id": "ch_sbx_abc",
            "payment_id": "pay_01",
            "status": "succeeded",
            "failure_code": None,
            "amount_captured": 2500,
            **data,
        },
    }


PAYLOAD = json.dumps(event()).encode()


@pytest.fixture
def gateway() -> SandboxGateway:
    return SandboxGateway(secret=SECRET)


def test_the_header_is_t_and_the_hex_hmac_of_t_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + PAYLOAD, hashlib.sha256).hexdigest()
    assert sign_webhook(PAYLOAD, SECRET, NOW) == f"t={NOW},v1={expected}"


def test_a_well_signed_recent_webhook_is_parsed(gateway: SandboxGateway) -> None:
    parsed = gateway.parse_webhook(PAYLOAD, sign_webhook(PAYLOAD, SECRET, NOW), NOW + 10)
    assert parsed is not None
    assert parsed.id == "evt_sbx_0123"
    assert parsed.type == "charge.succeeded"
    assert (parsed.charge_id, parsed.payment_id, parsed.status) == (
        "ch_sbx_abc",
        "pay_01",
        "succeeded",
    )
    assert (parsed.failure_code, parsed.amount_captured) == (None, 2500)


def test_a_failed_charge_event_carries_its_failure_code(gateway: SandboxGateway) -> None:
    failed = event(status="failed", failure_code="insufficient_funds", amount_captured=None)
    failed["type"] = "charge.failed"
    payload, header = signed_delivery(failed, SECRET, NOW)
    parsed = gateway.parse_webhook(payload, header, NOW)
    assert parsed is not None
    assert (parsed.type, parsed.status, parsed.failure_code) == (
        "charge.failed",
        "failed",
        "insufficient_funds",
    )


GOOD = sign_webhook(PAYLOAD, SECRET, NOW)
GOOD_V1 = GOOD.split(",v1=")[1]
SIGNED_FOR_NEXT_SECOND = sign_webhook(PAYLOAD, SECRET, NOW + 1).split(",v1=")[1]


@pytest.mark.parametrize(
    ("payload", "header"),
    [
        pytest.param(PAYLOAD, f"t={NOW},v1={'0' * 64}", id="bad-signature"),
        pytest.param(PAYLOAD.replace(b"2500", b"9500"), GOOD, id="tampered-body"),
        pytest.param(PAYLOAD + b" ", GOOD, id="trailing-byte"),
        pytest.param(PAYLOAD, sign_webhook(PAYLOAD, "whsec_other", NOW), id="wrong-secret"),
        pytest.param(PAYLOAD, f"t={NOW},v1={SIGNED_FOR_NEXT_SECOND}", id="timestamp-swapped"),
        pytest.param(PAYLOAD, f"t={NOW},v1={GOOD_V1.upper()}", id="upper-case-hex"),
        pytest.param(PAYLOAD, f"t={NOW},v1={GOOD_V1[:-1]}", id="truncated"),
    ],
)
def test_a_signature_that_does_not_match_is_refused(
    gateway: SandboxGateway, payload: bytes, header: str
) -> None:
    with pytest.raises(WebhookSignatureError, match="mismatch"):
        gateway.parse_webhook(payload, header, NOW)


@pytest.mark.parametrize("age", [301, 3600, NOW])
def test_a_webhook_older_than_five_minutes_is_refused(gateway: SandboxGateway, age: int) -> None:
    header = sign_webhook(PAYLOAD, SECRET, NOW - age)
    with pytest.raises(WebhookSignatureError, match="tolerance"):
        gateway.parse_webhook(PAYLOAD, header, NOW)


@pytest.mark.parametrize("ahead", [301, 86400])
def test_a_webhook_from_the_future_beyond_the_tolerance_is_refused(
    gateway: SandboxGateway, ahead: int
) -> None:
    header = sign_webhook(PAYLOAD, SECRET, NOW + ahead)
    with pytest.raises(WebhookSignatureError, match="tolerance"):
        gateway.parse_webhook(PAYLOAD, header, NOW)


@pytest.mark.parametrize("skew", [-300, -1, 0, 1, 300])
def test_the_tolerance_is_five_minutes_either_way(gateway: SandboxGateway, skew: int) -> None:
    header = sign_webhook(PAYLOAD, SECRET, NOW + skew)
    assert gateway.parse_webhook(PAYLOAD, header, NOW) is not None


@pytest.mark.parametrize("header", [None, ""])
def test_a_missing_header_is_refused(gateway: SandboxGateway, header: str | None) -> None:
    with pytest.raises(WebhookSignatureError, match="missing"):
        gateway.parse_webhook(PAYLOAD, header, NOW)


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        f"v1={GOOD_V1}",
        f"t={NOW}",
        f"t={NOW},v0={GOOD_V1}",
        f"t=abc,v1={GOOD_V1}",
        f"t=-{NOW},v1={GOOD_V1}",
        f"t={NOW}.5,v1={GOOD_V1}",
        f"t=١٢٣,v1={GOOD_V1}",
        f"t={NOW},t={NOW},v1={GOOD_V1}",
        f"t={NOW};v1={GOOD_V1}",
        f"t={NOW},v1",
    ],
)
def test_a_malformed_header_is_refused(gateway: SandboxGateway, header: str) -> None:
    with pytest.raises(WebhookSignatureError, match="malformed"):
        gateway.parse_webhook(PAYLOAD, header, NOW)


def test_any_of_several_v1_signatures_may_match_for_secret_rotation() -> None:
    old = sign_webhook(PAYLOAD, "whsec_old", NOW).split(",v1=")[1]
    header = f"t={NOW},v1={old},v1={GOOD_V1}, v0=ignored"
    verify_signature(PAYLOAD, header, SECRET, NOW)


def test_signatures_are_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    compared: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(base.hmac, "compare_digest", spy)
    verify_signature(PAYLOAD, GOOD, SECRET, NOW)
    with pytest.raises(WebhookSignatureError):
        verify_signature(PAYLOAD, f"t={NOW},v1={'f' * 64}", SECRET, NOW)
    assert len(compared) == 2
    assert compared[0] == (GOOD_V1.encode(), GOOD_V1.encode())


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        json.dumps({"id": "evt_1", "type": "charge.refunded", "data": event()["data"]}).encode(),
        json.dumps({"id": "evt_1", "type": "charge.succeeded"}).encode(),
        json.dumps(event(status="bogus")).encode(),
        json.dumps(event(failure_code="stolen_card")).encode(),
        json.dumps(event(charge_id=None)).encode(),
    ],
)
def test_a_signed_body_that_is_not_a_sandbox_event_is_refused(
    gateway: SandboxGateway, body: bytes
) -> None:
    with pytest.raises(WebhookPayloadError):
        gateway.parse_webhook(body, sign_webhook(body, SECRET, NOW), NOW)


def test_an_event_for_a_charge_without_our_payment_id_still_parses(
    gateway: SandboxGateway,
) -> None:
    # The webhook endpoint accepts and ignores it: an unknown payment is not an error here.
    payload, header = signed_delivery(event(payment_id=None), SECRET, NOW)
    parsed = gateway.parse_webhook(payload, header, NOW)
    assert parsed is not None and parsed.payment_id is None


def test_every_refusal_is_a_webhook_error() -> None:
    assert issubclass(WebhookSignatureError, WebhookError)
    assert issubclass(WebhookPayloadError, WebhookError)
