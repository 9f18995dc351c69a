"""Request models of the money-moving endpoints: the "money" row of API.md and friends.

Bodies are validated from JSON text, as they arrive, so that `10.0` and `1e3` are JSON
floats rather than Python values.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from cashew.payments.models import (
    BalanceSource,
    CardSource,
    PaymentRequest,
    TopUpRequest,
)

PAYEE = "usr_01JCQ3H1J3K5M7N9P1Q3R5S7T9"
METHOD = "pm_01JCQ3F7A2B4C6D8E0F2G4H6J8"


def top_up(**overrides: Any) -> dict[str, Any]:
    return {"amount": 2500, "currency": "USD", "payment_method_id": METHOD, **overrides}


def payment(**overrides: Any) -> dict[str, Any]:
    return {
        "amount": 2500,
        "currency": "USD",
        "payee_id": PAYEE,
        "source": {"type": "balance"},
        **overrides,
    }


def with_raw_amount(body: dict[str, Any], raw: str) -> str:
    """The JSON text of body with `amount` written exactly as `raw`."""
    text = json.dumps({**body, "amount": "__AMOUNT__"})
    return text.replace('"__AMOUNT__"', raw)


MODELS = [(TopUpRequest, top_up), (PaymentRequest, payment)]


@pytest.mark.parametrize(("model", "body"), MODELS, ids=["top_up", "payment"])
@pytest.mark.parametrize("raw", ["1", "2500", "100000000"])
def test_amount_in_bounds_is_accepted(model: Any, body: Any, raw: str) -> None:
    parsed = model.model_validate_json(with_raw_amount(body(), raw))
    assert parsed.amount == int(raw)
    assert type(parsed.amount) is int


@pytest.mark.parametrize(("model", "body"), MODELS, ids=["top_up", "payment"])
@pytest.mark.parametrize(
    "raw",
    [
        "10.0",
        '"10"',
        "1e3",
        "1E3",
        "1000.5",
        "true",
        "false",
        "0",
        "-1",
        "100000001",
        "1" + "0" * 30,
        "NaN",
        "Infinity",
        "null",
        "[10]",
        '{"value": 10}',
    ],
)
def test_amount_outside_the_money_rule_is_rejected(model: Any, body: Any, raw: str) -> None:
    # Given an amount that is not a JSON integer in 1..100000000
    with pytest.raises(ValidationError) as caught:
        model.model_validate_json(with_raw_amount(body(), raw))
    # Then the error is on `amount` only (never silently rounded or coerced)
    assert {tuple(e["loc"]) for e in caught.value.errors()} == {("amount",)}


@pytest.mark.parametrize(("model", "body"), MODELS, ids=["top_up", "payment"])
@pytest.mark.parametrize("value", [10.0, "10", True, 0, -1, 100_000_001])
def test_amount_rules_also_hold_for_python_values(model: Any, body: Any, value: Any) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(body(amount=value))


@pytest.mark.parametrize(("model", "body"), MODELS, ids=["top_up", "payment"])
@pytest.mark.parametrize("currency", ["USD", "EUR", "GBP", "JPY"])
def test_supported_currencies(model: Any, body: Any, currency: str) -> None:
    assert model.model_validate(body(currency=currency)).currency == currency


@pytest.mark.parametrize(("model", "body"), MODELS, ids=["top_up", "payment"])
@pytest.mark.parametrize("currency", ["usd", "Usd", "CHF", "XXX", "", "USDD", 840])
def test_unsupported_or_lower_case_currency_is_rejected(
    model: Any, body: Any, currency: Any
) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body(currency=currency))
    assert {tuple(e["loc"]) for e in caught.value.errors()} == {("currency",)}


@pytest.mark.parametrize(("model", "body"), MODELS, ids=["top_up", "payment"])
@pytest.mark.parametrize("extra", ["payer_id", "status", "amount_captured", "risk", "id"])
def test_unknown_fields_are_rejected(model: Any, body: Any, extra: str) -> None:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body(**{extra: "x"}))
    assert [(e["type"], e["loc"]) for e in caught.value.errors()] == [("extra_forbidden", (extra,))]


@pytest.mark.parametrize(
    "method_id",
    [
        "pm_01jcq3f7a2b4c6d8e0f2g4h6j8",  # lower case
        "pm_01JCQ3F7A2B4C6D8E0F2G4H6J",  # 25 characters
        "pm_01JCQ3F7A2B4C6D8E0F2G4H6J8X",  # 27 characters
        "usr_01JCQ3F7A2B4C6D8E0F2G4H6J8",  # another kind of id
        "pm_01JCQ3F7A2B4C6D8E0F2G4H6J8\n",  # trailing newline
        "",
    ],
)
def test_top_up_payment_method_id_format(method_id: str) -> None:
    with pytest.raises(ValidationError):
        TopUpRequest.model_validate(top_up(payment_method_id=method_id))


@pytest.mark.parametrize(
    "payee_id",
    [
        "usr_01jcq3h1j3k5m7n9p1q3r5s7t9",
        "usr_01JCQ3H1J3K5M7N9P1Q3R5S7T",
        "usr_01JCQ3H1J3K5M7N9P1Q3R5S7T99",
        "pm_01JCQ3H1J3K5M7N9P1Q3R5S7T9",
        "ses_01JCQ3H1J3K5M7N9P1Q3R5S7T9",
        " usr_01JCQ3H1J3K5M7N9P1Q3R5S7T9",
        "usr_01JCQ3H1J3K5M7N9P1Q3R5S7T9\n",
        "usr_",
        "",
    ],
)
def test_payee_id_format_is_rejected(payee_id: str) -> None:
    with pytest.raises(ValidationError) as caught:
        PaymentRequest.model_validate(payment(payee_id=payee_id))
    assert {tuple(e["loc"]) for e in caught.value.errors()} == {("payee_id",)}


def test_a_well_formed_payee_id_is_accepted() -> None:
    assert PaymentRequest.model_validate(payment()).payee_id == PAYEE


def test_source_balance() -> None:
    parsed = PaymentRequest.model_validate_json(json.dumps(payment()))
    assert isinstance(parsed.source, BalanceSource)
    assert parsed.capture is True  # capture defaults to true
    assert parsed.description is None


def test_source_card() -> None:
    source = {"type": "card", "payment_method_id": METHOD}
    parsed = PaymentRequest.model_validate_json(json.dumps(payment(source=source, capture=False)))
    assert isinstance(parsed.source, CardSource)
    assert parsed.source.payment_method_id == METHOD
    assert parsed.capture is False


def test_a_card_source_or_top_up_without_a_method_is_the_default() -> None:
    # API.md v1.1: payment_method_id may be omitted on top-ups and card sources
    parsed = PaymentRequest.model_validate(payment(source={"type": "card"}))
    assert isinstance(parsed.source, CardSource)
    assert parsed.source.payment_method_id is None
    body = top_up()
    del body["payment_method_id"]
    assert TopUpRequest.model_validate(body).payment_method_id is None


@pytest.mark.parametrize(
    "source",
    [
        {"type": "card", "payment_method_id": "pm_x"},  # a malformed method
        {"type": "balance", "payment_method_id": METHOD},  # balance with one: unknown field
        {"type": "card", "payment_method_id": METHOD, "number": "4242424242424242"},
        {"type": "bank"},
        {"type": "Card", "payment_method_id": METHOD},
        {},
        "balance",
        None,
    ],
    ids=[
        "card-with-malformed-method",
        "balance-with-method",
        "card-with-number",
        "unknown-type",
        "type-case",
        "empty",
        "string",
        "null",
    ],
)
def test_source_discriminator_rejects(source: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        PaymentRequest.model_validate(payment(source=source))
    assert all(e["loc"][0] == "source" for e in caught.value.errors())


def test_description_is_at_most_500_characters() -> None:
    assert PaymentRequest.model_validate(payment(description="d" * 500)).description == "d" * 500
    with pytest.raises(ValidationError):
        PaymentRequest.model_validate(payment(description="d" * 501))


@pytest.mark.parametrize("field", ["amount", "currency", "payee_id", "source"])
def test_payment_required_fields(field: str) -> None:
    body = payment()
    del body[field]
    with pytest.raises(ValidationError) as caught:
        PaymentRequest.model_validate(body)
    assert [(e["type"], e["loc"]) for e in caught.value.errors()] == [("missing", (field,))]


@pytest.mark.parametrize("capture", ["yes", "false", 0, 1, None])
def test_capture_must_be_a_json_boolean(capture: Any) -> None:
    # Given a lax boolean, When the request is parsed, Then it is rejected (never coerced)
    with pytest.raises(ValidationError):
        PaymentRequest.model_validate_json(json.dumps(payment(capture=capture)))


@pytest.mark.parametrize("capture", [True, False])
def test_capture_accepts_booleans(capture: bool) -> None:
    assert (
        PaymentRequest.model_validate_json(json.dumps(payment(capture=capture))).capture is capture
    )
