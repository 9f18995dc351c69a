"""Request and response models of the accounts endpoints."""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import (
    MISSING,
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
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


# E.164: "+", then 7 to 15 digits, the first not 0. ASCII digits only ([0-9], not \d, which
# the regex engine takes as any Unicode digit). Nothing is stripped or reformatted.
Phone = Annotated[
    str,
    StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$"),
    Field(description="E.164, for example +447700900123"),
]


class UserSettingsUpdate(StrictRequest):
    """A partial settings object: only the keys given change. A key that is absent is
    MISSING (not None): null is not a value of these fields."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    default_currency: Currency | MISSING = MISSING
    notify_email: Annotated[bool, Field(strict=True)] | MISSING = MISSING

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("settings must contain at least one field")
        return self


class UpdateMeRequest(StrictRequest):
    """PATCH /v1/users/me. Only these fields are writable: role, email, id and balances are
    not fields of this operation (422). An absent field is left as it is; `phone: null`
    clears the phone."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    name: Name | MISSING = MISSING
    phone: Phone | MISSING | None = MISSING
    settings: UserSettingsUpdate | MISSING = MISSING

    @model_validator(mode="after")
    def _changes_something(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("nothing to update")
        return self


class UserResponse(BaseModel):
    id: str
    email: str
    email_verified: bool
    name: str
    phone: str | None
    role: Literal["user", "admin"]
    settings: UserSettings
    mfa_enabled: bool = False
    created_at: str


CARD_NUMBER_PATTERN = "^ *(?:[0-9] *){12,19}$"
CVC_PATTERN = "^[0-9]{3,4}$"


class CardInput(StrictRequest):
    # the patterns say in the schema what the validators check (the Luhn check it cannot)
    number: SecretStr = Field(
        description="12-19 digits; spaces allowed",
        json_schema_extra={"pattern": CARD_NUMBER_PATTERN},
    )
    exp_month: int = Field(strict=True, ge=1, le=12)
    exp_year: int = Field(strict=True, ge=2000, le=2100)
    cvc: SecretStr = Field(
        description="3 or 4 digits; never stored", json_schema_extra={"pattern": CVC_PATTERN}
    )

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


GATEWAY_TOKEN_PATTERN = r"^(?:pm|tok)_[A-Za-z0-9._]{1,255}$"  # nosec B105 # a pattern, not a secret


class AddPaymentMethodRequest(StrictRequest):
    """A card by number (`card`), or by `gateway_token`: one the client got from the gateway
    directly (Stripe.js / Elements `pm_...`, the sandbox's `tok_...`), so the number never
    reaches Cashew. Exactly one of the two."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["card"]}, {"required": ["gateway_token"]}]}
    )

    card: CardInput | MISSING = MISSING
    gateway_token: SecretStr | MISSING = Field(
        default=MISSING,
        description="A card token from the gateway (Stripe.js `pm_...`, the sandbox's `tok_...`)",
        json_schema_extra={"pattern": GATEWAY_TOKEN_PATTERN},
    )
    billing_name: Name | None = None

    @field_validator("gateway_token")
    @classmethod
    def _token(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(GATEWAY_TOKEN_PATTERN, value.get_secret_value()):
            raise ValueError("gateway_token is not a card token of the gateway (pm_... or tok_...)")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if ("card" in self.model_fields_set) == ("gateway_token" in self.model_fields_set):
            raise ValueError("give exactly one of card and gateway_token")
        return self


class CardResponse(BaseModel):
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str


PaymentMethodStatus = Literal["active", "expired", "invalid"]


class PaymentMethodResponse(BaseModel):
    id: str
    type: Literal["card"] = "card"
    card: CardResponse
    billing_name: str | None = None
    status: PaymentMethodStatus = Field(
        description="`active` can be charged; `expired` (its expiry month has passed, or the "
        "issuer declined it as expired) and `invalid` cannot: 422 payment_method_unusable"
    )
    default: bool = Field(description="Used when a top-up or card source omits the method")
    last_used_at: str | None = Field(description="When it was last charged successfully")
    created_at: str


class UpdatePaymentMethodRequest(StrictRequest):
    """PATCH /v1/users/me/payment-methods/{id}: only `default: true` (making another method
    the default is how a default stops being one)."""

    default: bool = Field(strict=True, json_schema_extra={"const": True})

    @field_validator("default")
    @classmethod
    def _only_true(cls, value: bool) -> bool:
        if not value:
            raise ValueError("only true: a default stops being one when another method becomes it")
        return value


class PaymentMethodList(BaseModel):
    data: list[PaymentMethodResponse]
    has_more: bool
    next_cursor: str | None


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
