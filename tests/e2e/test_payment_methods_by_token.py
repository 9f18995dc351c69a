"""Cards by gateway token over HTTP against the local stack: the sandbox's own tokenisation
endpoint (`POST /_sandbox/v1/tokens`, standing for Stripe.js), then the token added as a
payment method and charged, without the card number ever reaching Cashew's API."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import top_up
from tests.support.secrets_seen import all_items

pytestmark = pytest.mark.e2e

CARD = {"number": "4242 4242 4242 4242", "exp_month": 11, "exp_year": 2031, "cvc": "314"}


def _tokenise(stack, card=CARD):
    return stack.request("POST", "/_sandbox/v1/tokens", json={"card": card})


def test_a_card_tokenised_by_the_sandbox_is_added_charged_and_attaches_once(stack, new_user):
    # Given a token from the sandbox's tokenisation endpoint (no Cashew credentials needed)
    tokenised = _tokenise(stack)
    assert tokenised.status_code == 200, tokenised.text
    body = tokenised.json()
    token = body["id"]
    assert token.startswith("tok_")
    assert body["card"] == {"brand": "visa", "last4": "4242", "exp_month": 11, "exp_year": 2031}
    assert "4242424242424242" not in tokenised.text and "314" not in token
    # When a user adds it by gateway_token, and tops up with it
    user = new_user()
    added = stack.request(
        "POST", "/v1/users/me/payment-methods", user.token, json={"gateway_token": token}
    )
    assert added.status_code == 201, added.text
    method = added.json()
    assert method["card"] | {"fingerprint": ""} == {**body["card"], "fingerprint": ""}
    assert (method["status"], method["default"]) == ("active", True)
    paid = top_up(stack, user, method["id"], 2_500)
    # Then the charge goes through and the method was used
    assert paid.status_code == 201, paid.text
    assert paid.json()["status"] == "succeeded"
    shown = stack.request("GET", f"/v1/users/me/payment-methods/{method['id']}", user.token)
    assert shown.json()["last_used_at"] is not None
    # ... and a second add of the same token, by anyone, is 422 on gateway_token
    for someone in (user, new_user()):
        again = stack.request(
            "POST", "/v1/users/me/payment-methods", someone.token, json={"gateway_token": token}
        )
        assert again.status_code == 422, again.text
        assert again.headers["Content-Type"].startswith("application/problem+json")
        assert [e["field"] for e in again.json()["errors"]] == ["gateway_token"]
    # ... and the token (or its random part) is in no log line and no stored item of any table
    nonce = token.split(".")[-2]
    everything = stack.logs() + all_items(stack.aws_url)
    assert token not in everything and nonce not in everything


def test_an_edited_token_is_422(stack, new_user):
    token = _tokenise(stack).json()["id"]
    edited = token.replace(".4242.", ".0000.")
    reply = stack.request(
        "POST", "/v1/users/me/payment-methods", new_user().token, json={"gateway_token": edited}
    )
    assert reply.status_code == 422, reply.text
    assert reply.json()["errors"] == [
        {"field": "gateway_token", "message": "is not a token of this gateway"}
    ]


@pytest.mark.parametrize(
    ("card", "field"),
    [
        ({**CARD, "number": "4242424242424241"}, "card.number"),  # Luhn
        ({**CARD, "exp_year": 2020}, "card.exp_year"),  # expired
        ({**CARD, "cvc": "12"}, "card.cvc"),
        ({**CARD, "extra": 1}, "card.extra"),
    ],
    ids=["luhn", "expired", "cvc", "unknown-field"],
)
def test_the_sandbox_refuses_a_card_adding_a_payment_method_would_refuse(stack, card, field):
    reply = _tokenise(stack, card)
    assert reply.status_code == 422, reply.text
    assert reply.headers["Content-Type"].startswith("application/problem+json")
    problem = reply.json()
    assert problem["code"] == "validation_error"
    assert [e["field"] for e in problem["errors"]] == [field]
    assert card["number"].replace(" ", "") not in reply.text
