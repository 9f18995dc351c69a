"""Request and response models of the accounts endpoints."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
)

from cashew.money import Currency


class StrictRequest(BaseModel):
    """Request bodies: unknown fields are rejected (no mass assignment)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


Email = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        min_length=3,
        max_length=254,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
    ),
]


def utf8_secret(value: SecretStr) -> SecretStr:
    """JSON can carry lone surrogates that no hash function can encode: a 422, not a 500."""
    try:
        value.get_secret_value().encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("must be valid UTF-8 text") from exc
    return value


Password = Annotated[SecretStr, Field(min_length=12, max_length=128), AfterValidator(utf8_secret)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class RegisterRequest(StrictRequest):
    email: Email
    password: Password
    name: Name


class UserSettings(BaseModel):
    default_currency: Currency = "USD"
    notify_email: bool = True


class UserResponse(BaseModel):
    id: str
    email: str
    name: str
    phone: str | None
    role: Literal["user", "admin"]
    settings: UserSettings
    created_at: str


class CardInput(StrictRequest):
    number: SecretStr = Field(description="12-19 digits; spaces allowed")
    exp_month: int = Field(strict=True, ge=1, le=12)
    exp_year: int = Field(strict=True, ge=2000, le=2100)
    cvc: SecretStr = Field(description="3 or 4 digits; never stored")

    @field_validator("number")
    @classmethod
    def _number(cls, value: SecretStr) -> SecretStr:
        digits = value.get_secret_value().replace(" ", "")
        if not _ascii_digits(digits) or not 12 <= len(digits) <= 19:
            raise ValueError("card number must be 12 to 19 digits")
        if not luhn_valid(digits):
            raise ValueError("card number is invalid")
        return SecretStr(digits)

    @field_validator("cvc")
    @classmethod
    def _cvc(cls, value: SecretStr) -> SecretStr:
        cvc = value.get_secret_value()
        if not _ascii_digits(cvc) or len(cvc) not in (3, 4):
            raise ValueError("cvc must be 3 or 4 digits")
        return value


class AddPaymentMethodRequest(StrictRequest):
    card: CardInput
    billing_name: Name | None = None


class CardResponse(BaseModel):
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str


class PaymentMethodResponse(BaseModel):
    id: str
    type: Literal["card"] = "card"
    card: CardResponse
    billing_name: str | None = None
    created_at: str


class Balance(BaseModel):
    currency: str
    available: int


class BalancesResponse(BaseModel):
    data: list[Balance]


def _ascii_digits(text: str) -> bool:
    """0-9 only: str.isdigit() also accepts full-width and other scripts' digits."""
    return text.isascii() and text.isdigit()


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0
