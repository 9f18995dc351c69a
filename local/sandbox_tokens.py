"""`POST /_sandbox/v1/tokens` `{card: {number, exp_month, exp_year, cvc}}` -> 200
`{id: "tok_...", card: {brand, last4, exp_month, exp_year}}`: the sandbox gateway's own
tokenisation (standing for Stripe.js), so a client can add a card by `gateway_token` without
the number reaching Cashew. Local only (served by `make dev` beside the API, never in
template.yaml).

The card is validated as adding a payment method validates it (Luhn, expiry, cvc, unknown
fields: 422 problem+json through Cashew's own resolver, whose errors never quote the input);
the token is issued under the stack's gateway secret, which the functions verify it with.
Nothing of the body is logged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.event_handler import Response
from pydantic import BaseModel

from cashew.accounts import cards
from cashew.accounts.models import CardInput, StrictRequest
from cashew.errors import InvalidRequestError
from cashew.gateways.sandbox import SandboxGateway
from cashew.http import CashewResolver
from local.sandbox import TOKENS_PATH

PATH = TOKENS_PATH


class TokenRequest(StrictRequest):
    card: CardInput


class TokenCard(BaseModel):
    brand: str
    last4: str
    exp_month: int
    exp_year: int


class Token(BaseModel):
    id: str
    card: TokenCard


def handler(secret: Callable[[], str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A proxy-event handler of the endpoint, signing with `secret()` at each call."""
    app = CashewResolver()

    @app.post(PATH)
    def tokenise(body: TokenRequest) -> Response[Token]:
        card = body.card
        number = card.number.get_secret_value()
        if cards.is_expired(card.exp_month, card.exp_year):
            raise InvalidRequestError(
                "card has expired",
                errors=[{"field": "card.exp_year", "message": "card has expired"}],
            )
        token = SandboxGateway(secret=secret()).issue_token(number, card.exp_month, card.exp_year)
        shown = TokenCard(
            brand=cards.brand(number), last4=number[-4:], exp_month=card.exp_month,
            exp_year=card.exp_year,
        )  # fmt: skip
        return Response(200, "application/json", Token(id=token, card=shown))

    def handle(event: dict[str, Any]) -> dict[str, Any]:
        return app.resolve(event, None)  # type: ignore[arg-type]

    return handle
