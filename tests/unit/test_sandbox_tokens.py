"""The sandbox's card tokens (what `POST /_sandbox/v1/tokens` issues and `attach_token`
recognises without shared state), its card-update event, and the add-payment-method body's
"exactly one of card and gateway_token"."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from cashew.accounts.models import AddPaymentMethodRequest
from cashew.gateways.base import CardUpdate, TokenRejectedError, sign_webhook
from cashew.gateways.sandbox import SCENARIOS, SandboxGateway

SECRET = "a sandbox secret that is long enough to use"
NUMBERS = ["4242424242424242", "5555555555554444", *SCENARIOS]


@pytest.fixture
def gateway() -> SandboxGateway:
    return SandboxGateway(secret=SECRET)


@pytest.mark.parametrize("number", NUMBERS)
def test_a_token_round_trips_the_card_and_its_scenario_but_never_the_number(
    gateway: SandboxGateway, number: str
) -> None:
    token = gateway.issue_token(number, 4, 2031)
    assert token.startswith("tok_") and number not in token and number[:12] not in token
    attached = gateway.attach_token(token)
    scenario = SCENARIOS.get(number, "approved")
    assert (attached.last4, attached.exp_month, attached.exp_year) == (number[-4:], 4, 2031)
    assert attached.brand == ("mastercard" if number.startswith("5") else "visa")
    assert attached.risk_flag is (scenario == "risky")
    # the charging token is the one number-added cards get: the same scenario, same outcomes
    assert attached.token.startswith(f"tok_sbx_{scenario}_")
    tokenised = gateway.tokenise(number, 4, 2031, "123")
    assert tokenised.token.rsplit("_", 1)[0] == attached.token.rsplit("_", 1)[0]


def test_tokens_are_random_but_the_same_token_charges_the_same_way(
    gateway: SandboxGateway,
) -> None:
    first, second = (gateway.issue_token("4242424242424242", 12, 2030) for _ in range(2))
    assert first != second
    assert gateway.attach_token(first).token == gateway.attach_token(first).token
    assert gateway.attach_token(first).token != gateway.attach_token(second).token
    # ... and the gateway's fingerprint is the card's, whatever the token
    assert gateway.attach_token(first).fingerprint == gateway.attach_token(second).fingerprint
    other = gateway.issue_token("5555555555554444", 12, 2030)
    assert gateway.attach_token(other).fingerprint != gateway.attach_token(first).fingerprint


def _edits(token: str) -> list[str]:
    fields = token.split(".")
    edited = []
    for index, value in enumerate(fields):
        swapped = value[:-1] + ("0" if value[-1] != "0" else "1")
        edited.append(".".join([*fields[:index], swapped, *fields[index + 1 :]]))
    return edited


def test_an_edited_forged_or_malformed_token_is_unknown(gateway: SandboxGateway) -> None:
    token = gateway.issue_token("4000000000000002", 12, 2030)
    forged = SandboxGateway(secret="another secret, also long enough!!").issue_token(
        "4000000000000002", 12, 2030
    )
    scenario_swapped = token.replace("tok_declined.", "tok_approved.")
    candidates = [
        *_edits(token), forged, scenario_swapped, token + "0", token[:-1], "tok_", "pm_1Abc",
        token.upper(), token.replace(".", "_"),
    ]  # fmt: skip
    for candidate in candidates:
        with pytest.raises(TokenRejectedError) as raised:
            gateway.attach_token(candidate)
        assert raised.value.reason == "unknown", candidate
        assert str(raised.value) == "gateway_token is not a token of this gateway"


def test_the_card_update_event_is_verified_and_parsed(gateway: SandboxGateway) -> None:
    event = {
        "id": "evt_sbx_1",
        "type": "payment_method.automatically_updated",
        "data": {"token": "tok_sbx_approved_ab", "last4": "1111", "exp_month": 2, "exp_year": 2035},
    }
    body = json.dumps(event).encode()
    parsed = gateway.parse_webhook(body, sign_webhook(body, SECRET, 1_000), 1_000)
    assert parsed == CardUpdate(
        id="evt_sbx_1", type="payment_method.automatically_updated",
        token="tok_sbx_approved_ab", last4="1111", exp_month=2, exp_year=2035,
    )  # fmt: skip
    assert "tok_sbx_approved_ab" not in repr(parsed)


CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"billing_name": "A"},
        {"card": CARD, "gateway_token": "tok_x"},
        {"gateway_token": None},
        {"card": None},
        {"gateway_token": "card 4242"},
        {"gateway_token": "tok_" + "a" * 256},
        {"gateway_token": "tok_x", "cvc": "123"},
    ],
)
def test_the_body_needs_exactly_one_of_card_and_gateway_token(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AddPaymentMethodRequest.model_validate(body)


@pytest.mark.parametrize("token", ["tok_approved.visa.4242", "pm_1NpQk2LkdIwHu7ix"])
def test_a_well_formed_gateway_token_is_accepted_and_kept_secret(token: str) -> None:
    request = AddPaymentMethodRequest.model_validate({"gateway_token": token})
    assert token not in repr(request)
    assert "card" not in request.model_fields_set
