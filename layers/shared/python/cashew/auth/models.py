"""Request and response models of the authentication endpoints."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, StringConstraints

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
