"""Settings: required variables, the defaults of API.md, and the bounds that keep them safe."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cashew.config import Settings, get_settings

from .conftest import REQUIRED_ENV


@pytest.mark.parametrize("name", sorted(REQUIRED_ENV))
def test_every_required_variable_is_required(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.delenv(name)
    with pytest.raises(ValidationError) as caught:
        get_settings()
    assert [e["loc"] for e in caught.value.errors()] == [(name,)]


@pytest.mark.parametrize(
    ("attribute", "default"),
    [
        ("access_token_ttl", 900),
        ("refresh_token_ttl", 30 * 86400),
        ("login_max_failures", 5),
        ("fraud_max_payments_10min", 30),
        ("fraud_block_risky_cards", True),
        ("idempotency_ttl", 86400),
        ("issuer", "https://cashew.dev"),
        ("audience", "cashew-api"),
        ("gateway", "sandbox"),
    ],
)
def test_defaults_are_those_of_the_contract(attribute: str, default: object) -> None:
    assert getattr(get_settings(), attribute) == default


def test_no_gateway_secret_is_built_in() -> None:
    # The gateway's keys are only ever those of the stack's GatewaySecret, and an unset
    # stage counts as deployed (so the gateway's checks apply)
    settings = get_settings()
    assert (settings.gateway_secret_id, settings.stage) == (None, None)
    assert "whsec_" not in repr(settings)
    assert not any("whsec_" in str(field.default) for field in Settings.model_fields.values())


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CASHEW_ACCESS_TOKEN_TTL", "901"),  # access tokens live at most 15 minutes
        ("CASHEW_ACCESS_TOKEN_TTL", "59"),
        ("CASHEW_IDEMPOTENCY_TTL", "86399"),  # keys are kept at least 24 h
        ("CASHEW_FRAUD_MAX_AMOUNT", "0"),
        ("CASHEW_LOGIN_MAX_FAILURES", "0"),
        ("CASHEW_GATEWAY", "paypal"),
        ("CASHEW_GATEWAY_MAX_ATTEMPTS", "0"),
        ("CASHEW_GATEWAY_MAX_ATTEMPTS", "6"),
        ("CASHEW_FRAUD_MAX_AMOUNT", "lots"),
    ],
)
def test_unsafe_values_are_refused(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        get_settings()


def test_settings_are_read_from_the_environment_once_per_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CASHEW_FRAUD_MAX_AMOUNT", "1000")
    assert get_settings().fraud_max_amount["USD"] == 1000
    monkeypatch.setenv("CASHEW_FRAUD_MAX_AMOUNT", "2000")
    assert get_settings().fraud_max_amount["USD"] == 1000  # cached
    get_settings.cache_clear()
    assert get_settings().fraud_max_amount["USD"] == 2000


def test_settings_are_immutable() -> None:
    with pytest.raises(ValidationError):
        get_settings().fraud_max_amount = 1  # type: ignore[assignment,misc]
    with pytest.raises(ValidationError):
        get_settings().fraud_max_amount.for_all = 1  # type: ignore[misc]
    assert isinstance(get_settings(), Settings)


# --- the per-currency fraud thresholds ----------------------------------------------------

AMOUNT_VARIABLES = {
    "CASHEW_FRAUD_MAX_AMOUNT": ("fraud_max_amount", 500_000),
    "CASHEW_FRAUD_MAX_AMOUNT_24H": ("fraud_max_amount_24h", 2_000_000),
    "CASHEW_FRAUD_NEW_CARD_AMOUNT": ("fraud_new_card_amount", 200_000),
}


@pytest.mark.parametrize("variable", sorted(AMOUNT_VARIABLES))
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1000", {"USD": 1000, "EUR": 1000, "GBP": 1000, "JPY": 1000}),
        (" 1000 ", {"USD": 1000, "EUR": 1000, "GBP": 1000, "JPY": 1000}),
        ("USD=500000,JPY=50000", {"USD": 500_000, "JPY": 50_000, "EUR": None, "GBP": None}),
        (" JPY = 7 , GBP=9 ", {"USD": None, "EUR": None, "GBP": 9, "JPY": 7}),
        ("USD=1,EUR=2,GBP=3,JPY=4", {"USD": 1, "EUR": 2, "GBP": 3, "JPY": 4}),
    ],
)
def test_an_amount_threshold_is_per_currency_or_for_all(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: dict[str, int | None]
) -> None:
    # Given the variable set (None: a currency the value does not name)
    attribute, default = AMOUNT_VARIABLES[variable]
    monkeypatch.setenv(variable, value)
    # Then each currency has its own threshold, the unnamed ones the documented default
    threshold = getattr(get_settings(), attribute)
    assert {c: threshold[c] for c in expected} == {
        c: default if v is None else v for c, v in expected.items()
    }


@pytest.mark.parametrize("variable", sorted(AMOUNT_VARIABLES))
def test_an_unset_amount_threshold_is_the_default_for_every_currency(variable: str) -> None:
    attribute, default = AMOUNT_VARIABLES[variable]
    threshold = getattr(get_settings(), attribute)
    assert [threshold[c] for c in ("USD", "EUR", "GBP", "JPY")] == [default] * 4


@pytest.mark.parametrize("variable", sorted(AMOUNT_VARIABLES))
@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("", "expected a number of minor units"),
        ("lots", "expected a number of minor units"),
        ("-5", "expected a number of minor units"),
        ("5e5", "expected a number of minor units"),
        ("1.5", "expected a number of minor units"),
        ("500_000", "expected a number of minor units"),
        ("USD=1.5", "expected a number of minor units"),
        ("USD=", "expected a number of minor units"),
        ("USD=5,", "expected a number of minor units"),
        ("USD:5", "expected a number of minor units"),
        ("USD=5;JPY=6", "expected a number of minor units"),
        ("1000,JPY=5", "expected a number of minor units"),
        ("XYZ=5", "'XYZ' is not a currency (USD, EUR, GBP, JPY)"),
        ("usd=5", "'usd' is not a currency"),
        ("USD=5,USD=6", "USD is given twice"),
        ("0", "greater than or equal to 1"),
        ("USD=0", "greater than or equal to 1"),
    ],
)
def test_a_malformed_amount_threshold_fails_the_settings_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, says: str
) -> None:
    # Given a value the format does not allow
    monkeypatch.setenv(variable, value)
    # Then the settings (read first by every request of the function) refuse it, saying
    # which variable and why: never a threshold guessed, never a payment's 500 later
    with pytest.raises(ValidationError) as caught:
        get_settings()
    (error,) = caught.value.errors()
    assert error["loc"][0] == variable
    assert says in str(caught.value)


@pytest.mark.parametrize("value", ["maybe", "", "2"])
def test_a_malformed_risky_cards_setting_fails_the_settings(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CASHEW_FRAUD_BLOCK_RISKY_CARDS", value)
    with pytest.raises(ValidationError) as caught:
        get_settings()
    assert [e["loc"] for e in caught.value.errors()] == [("CASHEW_FRAUD_BLOCK_RISKY_CARDS",)]


def test_settings_with_per_currency_thresholds_are_hashable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (the gateway's cache is keyed by the settings)
    monkeypatch.setenv("CASHEW_FRAUD_MAX_AMOUNT", "USD=5,JPY=6")
    first = get_settings()
    get_settings.cache_clear()
    assert hash(first) == hash(get_settings()) and first == get_settings()
    monkeypatch.setenv("CASHEW_FRAUD_MAX_AMOUNT", "USD=5,JPY=7")
    get_settings.cache_clear()
    assert first != get_settings()
