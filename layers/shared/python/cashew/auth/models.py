"""Request and response models of the authentication endpoints."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, StringConstraints

from cashew.accounts.models import utf8_secret


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


class Jwk(BaseModel):
    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str


class JwkSet(BaseModel):
    keys: list[Jwk]
