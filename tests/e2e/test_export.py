"""GET /v1/users/me/export over HTTP, as a client downloads their data: every page followed,
each item once, no token or secret in it, and nobody else's data."""

from __future__ import annotations

import uuid
from typing import Any

from tests.e2e.conftest import add_card, top_up, wait_for_entries

EXPORT = "/v1/users/me/export"


def export_all(stack, token: str) -> list[dict[str, Any]]:
    pages, params = [], {}
    while True:
        reply = stack.request("GET", EXPORT, token, params=params)
        assert reply.status_code == 200, reply.text
        assert reply.headers["Content-Type"].startswith("application/json")
        pages.append(reply.json())
        if reply.json()["next_cursor"] is None:
            assert reply.json()["has_more"] is False
            return pages
        params = {"cursor": reply.json()["next_cursor"]}


def test_a_user_downloads_everything_about_them_and_nothing_of_anyone_else(stack, new_user):
    # Given Alice with a card, a top-up and a payment to Bob, settled into her log
    alice, bob = new_user("Alice"), new_user("Bob")
    card = add_card(stack, alice)
    top_up(stack, alice, card, 2_000)
    paid = stack.request(
        "POST", "/v1/payments", alice.token, headers={"Idempotency-Key": str(uuid.uuid4())},
        json={"amount": 700, "currency": "USD", "payee_id": bob.id, "source": {"type": "balance"}},
    )  # fmt: skip
    assert paid.status_code == 201, paid.text
    assert wait_for_entries(stack, alice.token, payment_id=paid.json()["id"], status="succeeded")
    # When Alice downloads her export
    pages = export_all(stack, alice.token)
    # Then it holds her profile, card, session, both payments and her log entries
    [page] = pages
    me = stack.request("GET", "/v1/users/me", alice.token).json()
    assert page["user"] == me and me["name"] == "Alice"
    assert [m["id"] for m in page["payment_methods"]] == [card]
    assert page["payment_methods"][0]["card"]["last4"] == "4242"
    assert len(page["sessions"]) == 1 and page["sessions"][0]["current"] is True
    assert {p["type"] for p in page["payments"]} == {"top_up", "payment"}
    assert paid.json()["id"] in {p["id"] for p in page["payments"]}
    assert {e["payment_id"] for e in page["transactions"]} >= {paid.json()["id"]}
    assert all(e["user_id"] == alice.id for e in page["transactions"])
    # ... never her tokens, and nothing of Bob's but his id on the payment she made him
    text = str(pages)
    assert alice.token not in text and alice.refresh_token not in text
    assert bob.email not in text and "Bob" not in text
    # And Bob's export has the payment as payee, not Alice's card or top-up
    [bobs] = export_all(stack, bob.token)
    assert [p["id"] for p in bobs["payments"]] == [paid.json()["id"]]
    assert bobs["payment_methods"] == [] and bobs["user"]["id"] == bob.id


def test_the_export_needs_a_token_and_a_cursor_of_its_own(stack, new_user):
    # Given a user
    bob = new_user()
    # When someone without a token, or with a forged cursor, asks
    anonymous = stack.request("GET", EXPORT)
    forged = stack.request("GET", EXPORT, bob.token, params={"cursor": "e30"})
    # Then they get precise 4xx problems
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "unauthenticated")
    assert forged.status_code == 422, forged.text
    assert forged.headers["Content-Type"].startswith("application/problem+json")
    assert forged.json()["code"] == "validation_error"
