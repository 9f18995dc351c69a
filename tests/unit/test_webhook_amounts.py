"""A gateway event never moves more money than the payment authorised (issue 10, 1a):
`webhooks.refusal` decides, before anything is written, whether an event may move money."""

from __future__ import annotations

import pytest

from cashew.gateways.base import WebhookEvent
from cashew.payments.models import PaymentResponse, Risk
from cashew.payments.webhooks import refusal

AUTHORISED = 1000


def processing_payment(amount: int = AUTHORISED, currency: str = "USD") -> PaymentResponse:
    return PaymentResponse(
        id="pay_01JZ0000000000000000000000",
        type="payment",
        status="processing",
        amount=amount,
        currency=currency,
        payer_id="usr_01JZ0000000000000000000001",
        payee_id="usr_01JZ0000000000000000000002",
        source={"type": "card", "payment_method_id": "pm_01JZ0000000000000000000000"},
        amount_captured=0,
        amount_refunded=0,
        failure_code=None,
        failure_message=None,
        risk=Risk(score=0, level="normal"),
        description=None,
        created_at="2025-01-01T00:00:00Z",
        updated_at="2025-01-01T00:00:00Z",
    )


def succeeded(amount: int | None, currency: str | None = None) -> WebhookEvent:
    return WebhookEvent(
        id="evt_sbx_1",
        type="charge.succeeded",
        charge_id="ch_sbx_1",
        payment_id="pay_01JZ0000000000000000000000",
        status="succeeded",
        amount_captured=amount,
        currency=currency,
    )


@pytest.mark.parametrize("amount", [AUTHORISED, 1, AUTHORISED - 1, None])
def test_a_settlement_within_the_authorised_amount_may_move_money(amount: int | None) -> None:
    # Given a processing payment of 1,000 / When the gateway settles it for at most that
    assert refusal(succeeded(amount), processing_payment(), "succeeded") is None


@pytest.mark.parametrize(
    ("amount", "reason"),
    [
        (AUTHORISED + 1, "amount_above_authorised"),
        (100_000_000, "amount_above_authorised"),
        (0, "amount_not_positive"),
        (-5, "amount_not_positive"),
    ],
)
def test_a_settlement_outside_1_to_authorised_moves_nothing(amount: int, reason: str) -> None:
    assert refusal(succeeded(amount), processing_payment(), "succeeded") == reason


def test_an_event_in_another_currency_moves_nothing() -> None:
    assert refusal(succeeded(AUTHORISED, "EUR"), processing_payment(), "succeeded") == "currency"
    assert refusal(succeeded(AUTHORISED, "usd"), processing_payment(), "succeeded") is None
    declined = WebhookEvent(
        id="evt_sbx_2", type="charge.failed", charge_id="ch_sbx_1", payment_id=None,
        status="failed", currency="EUR",
    )  # fmt: skip
    assert refusal(declined, processing_payment(), "failed") == "currency"


def test_an_authorisation_or_a_decline_moves_no_money_and_is_not_bounded() -> None:
    authorised = succeeded(0)
    assert refusal(authorised, processing_payment(), "requires_capture") is None
    assert refusal(succeeded(None), processing_payment(), "failed") is None
