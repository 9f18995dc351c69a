"""The handler edge of the money operations: an `Outcome` as the HTTP response."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel

if TYPE_CHECKING:
    from cashew.payments.idempotency import Outcome

CREATED, OK = 201, 200

# The 403 of every money-moving POST, in the OpenAPI document (API.md "Users and accounts").
EMAIL_UNVERIFIED = (
    "`email_unverified`: the caller's email is not verified, and money moves only for "
    "verified emails (CASHEW_REQUIRE_VERIFIED_EMAIL)"
)


def status_code(outcome: Outcome[BaseModel]) -> int:
    """201 for a new payment or refund, 200 for a changed one; a replay keeps the first's."""
    return CREATED if outcome.created else OK


def response[M: BaseModel](outcome: Outcome[M]) -> Response[M]:
    """The answer and its status; replays carry `Idempotent-Replayed: true`."""
    return Response(
        status_code=status_code(outcome),
        content_type="application/json",
        body=outcome.model,
        headers={"Idempotent-Replayed": "true"} if outcome.replayed else None,
    )
