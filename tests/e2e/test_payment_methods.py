"""Payment methods after transactions, over HTTP as a client sees them (API.md v1.1): the
default, PATCH {default: true}, deleting the default, last_used_at, an expired_card decline
making the method expired and unusable, and an omitted payment_method_id."""

from __future__ import annotations

import uuid
from typing import Any

from tests.e2e.conftest import add_card, balance, top_up

METHODS = "/v1/users/me/payment-methods"


def methods(stack, user) -> dict[str, dict[str, Any]]:
    reply = stack.request("GET", METHODS, user.token, params={"limit": 100})
    assert reply.status_code == 200, reply.text
    return {m["id"]: m for m in reply.json()["data"]}


def charge(stack, user, path: str, body: dict[str, Any]) -> Any:
    return stack.request(
        "POST", path, user.token, headers={"Idempotency-Key": str(uuid.uuid4())}, json=body
    )


def test_the_default_moves_by_patch_and_to_the_last_used_card_on_delete(stack, new_user):
    # Given a user with three cards: the first is the default
    user = new_user()
    first, second, third = (add_card(stack, user) for _ in range(3))
    shown = methods(stack, user)
    assert {i: m["default"] for i, m in shown.items()} == {first: True, second: False, third: False}
    assert {m["status"] for m in shown.values()} == {"active"}
    # When they make the second the default
    patched = stack.request("PATCH", f"{METHODS}/{second}", user.token, json={"default": True})
    # Then it is 200 with the method, and it alone is the default
    assert patched.status_code == 200, patched.text
    assert (patched.json()["id"], patched.json()["default"]) == (second, True)
    assert [i for i, m in methods(stack, user).items() if m["default"]] == [second]
    # And {default: false} is no way to change it
    refused = stack.request("PATCH", f"{METHODS}/{second}", user.token, json={"default": False})
    assert (refused.status_code, refused.json()["code"]) == (422, "validation_error")
    # When the first card is used (the third never is), then the default is deleted
    top_up(stack, user, first, 500)
    assert methods(stack, user)[first]["last_used_at"] is not None
    deleted = stack.request("DELETE", f"{METHODS}/{second}", user.token)
    # Then the most recently used other active card is the default
    assert deleted.status_code == 204
    assert [i for i, m in methods(stack, user).items() if m["default"]] == [first]
    # And another user cannot make it theirs
    other = new_user()
    stolen = stack.request("PATCH", f"{METHODS}/{first}", other.token, json={"default": True})
    assert (stolen.status_code, stolen.json()["code"]) == (404, "not_found")


def test_an_omitted_method_is_the_default_and_none_is_422(stack, new_user):
    # Given a user without a card, and a payee
    user, payee = new_user(), new_user()
    # When they top up naming no method
    none = charge(stack, user, "/v1/top-ups", {"amount": 500, "currency": "USD"})
    # Then it is 422: there is no default
    assert (none.status_code, none.json()["code"]) == (422, "validation_error"), none.text
    # When they add a card and top up, then pay by card, naming no method
    card = add_card(stack, user)
    topped = charge(stack, user, "/v1/top-ups", {"amount": 1_500, "currency": "USD"})
    paid = charge(
        stack, user, "/v1/payments",
        {"amount": 400, "currency": "USD", "payee_id": payee.id, "source": {"type": "card"}},
    )  # fmt: skip
    # Then the default card was charged for both
    assert topped.status_code == paid.status_code == 201, (topped.text, paid.text)
    assert topped.json()["source"] == paid.json()["source"] == {
        "type": "card", "payment_method_id": card,
    }  # fmt: skip
    assert balance(stack, user) == 1_500
    assert balance(stack, payee) == 400


def test_an_expired_card_decline_makes_the_card_unusable_before_the_gateway(stack, new_user):
    # Given a card the issuer declines as expired
    user = new_user()
    card = add_card(stack, user, "4000000000000069")
    # When it is charged
    declined = charge(
        stack, user, "/v1/top-ups",
        {"amount": 500, "currency": "USD", "payment_method_id": card},
    )  # fmt: skip
    # Then the payment failed with expired_card and the card is now expired
    assert declined.status_code == 201, declined.text
    assert declined.json()["failure_code"] == "expired_card"
    assert methods(stack, user)[card]["status"] == "expired"
    # When it is charged again
    again = charge(
        stack, user, "/v1/top-ups",
        {"amount": 500, "currency": "USD", "payment_method_id": card},
    )  # fmt: skip
    # Then it is 422 payment_method_unusable, and no payment was recorded for it
    assert again.status_code == 422, again.text
    assert again.headers["Content-Type"].startswith("application/problem+json")
    assert again.json()["code"] == "payment_method_unusable"
    listed = stack.request("GET", "/v1/payments", user.token, params={"role": "payer"}).json()
    assert [p["failure_code"] for p in listed["data"]] == ["expired_card"]
