"""Request and response models of the authentication endpoints."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import (
    MISSING,
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StringConstraints,
    model_validator,
)

from cashew.accounts.models import Password, utf8_secret


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=254)]
    password: Annotated[SecretStr, Field(min_length=1, max_length=128), AfterValidator(utf8_secret)]


class LoginResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    refresh_token: str
    refresh_expires_in: int
    session_id: str


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    refresh_token: Annotated[
        SecretStr, Field(min_length=1, max_length=512), AfterValidator(utf8_secret)
    ]


class SessionResponse(BaseModel):
    id: str
    created_at: str
    last_used_at: str
    user_agent: str
    current: bool


class SessionList(BaseModel):
    data: list[SessionResponse]
    has_more: bool
    next_cursor: str | None


class ChangePasswordRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    current_password: Annotated[
        SecretStr, Field(min_length=1, max_length=128), AfterValidator(utf8_secret)
    ]
    new_password: Password


class Jwk(BaseModel):
    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str


class JwkSet(BaseModel):
    keys: list[Jwk]


def _six_digits(value: SecretStr) -> SecretStr:
    code = value.get_secret_value()
    if not (len(code) == 6 and all(c in "0123456789" for c in code)):
        raise ValueError("must be 6 digits")
    return value


TotpCode = Annotated[
    SecretStr,
    Field(min_length=6, max_length=6, json_schema_extra={"pattern": "^[0-9]{6}$"}),
    AfterValidator(_six_digits),
]
RecoveryCode = Annotated[SecretStr, Field(min_length=1, max_length=64), AfterValidator(utf8_secret)]
CurrentPassword = Annotated[
    SecretStr, Field(min_length=1, max_length=128), AfterValidator(utf8_secret)
]


class MfaEnrolRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    password: CurrentPassword


class MfaEnrolResponse(BaseModel):
    secret: str
    otpauth_uri: str


class MfaConfirmRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    code: TotpCode


class RecoveryCodes(BaseModel):
    recovery_codes: list[str]


class MfaDisableRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    password: CurrentPassword
    code: TotpCode


class LoginMfaRequest(BaseModel):
    """The second step of a login: the `mfa_token` of the 401 `mfa_required`, and exactly one
    of a code of the authenticator or an unused recovery code."""

    model_config = ConfigDict(
        extra="forbid",
        hide_input_in_errors=True,
        json_schema_extra={"oneOf": [{"required": ["code"]}, {"required": ["recovery_code"]}]},
    )

    mfa_token: Annotated[
        SecretStr, Field(min_length=1, max_length=128), AfterValidator(utf8_secret)
    ]
    code: TotpCode | MISSING = MISSING
    recovery_code: RecoveryCode | MISSING = MISSING

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if ("code" in self.model_fields_set) == ("recovery_code" in self.model_fields_set):
            raise ValueError("give exactly one of code and recovery_code")
        return self
