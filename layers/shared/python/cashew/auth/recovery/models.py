"""Request models of the account-recovery endpoints."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, StringConstraints

from cashew.accounts.models import Password, utf8_secret


class PasswordResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    email: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=254)]


class PasswordResetConfirmRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    token: Annotated[SecretStr, Field(min_length=1, max_length=512), AfterValidator(utf8_secret)]
    new_password: Password


class ResetRequested(BaseModel):
    """The answer to a reset request: an empty object, for an account or not."""

    model_config = ConfigDict(extra="forbid")


class VerifyEmailRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    token: Annotated[SecretStr, Field(min_length=1, max_length=512), AfterValidator(utf8_secret)]


class VerificationRequested(BaseModel):
    """The answer to a resend: an empty object, whether or not an email was sent."""

    model_config = ConfigDict(extra="forbid")
