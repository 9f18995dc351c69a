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
        ("fraud_max_amount", 500_000),
        ("fraud_new_card_amount", 200_000),
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
    assert get_settings().fraud_max_amount == 1000
    monkeypatch.setenv("CASHEW_FRAUD_MAX_AMOUNT", "2000")
    assert get_settings().fraud_max_amount == 1000  # cached
    get_settings.cache_clear()
    assert get_settings().fraud_max_amount == 2000


def test_settings_are_immutable() -> None:
    with pytest.raises(ValidationError):
        get_settings().fraud_max_amount = 1  # type: ignore[misc]
    assert isinstance(get_settings(), Settings)
