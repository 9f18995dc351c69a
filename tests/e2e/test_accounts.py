"""Profile updates, payment methods and per-currency balances over HTTP, as a client sees them."""

from __future__ import annotations

import uuid

from tests.e2e.conftest import add_card

PUBLIC_FIELDS = {
    "id", "type", "card", "billing_name", "status", "default", "last_used_at", "created_at",
}  # fmt: skip


def test_patch_me_changes_only_what_is_sent_and_rejects_everything_else(stack, new_user):
    # Given a user
    user = new_user("Ada")
    # When they PATCH their name, phone and one setting
    updated = stack.request(
        "PATCH",
        "/v1/users/me",
        user.token,
        json={"name": " Ada King ", "phone": "+447700900123", "settings": {"notify_email": False}},
    )
    # Then the user comes back changed, the other setting kept, and GET agrees
    assert updated.status_code == 200, updated.text
    body = updated.json()
    assert (body["id"], body["email"], body["role"]) == (user.id, user.email, "user")
    assert (body["name"], body["phone"]) == ("Ada King", "+447700900123")
    assert body["settings"] == {"default_currency": "USD", "notify_email": False}
    assert stack.request("GET", "/v1/users/me", user.token).json() == body
    # When they try to make themselves admin, change their email, or send nothing
    for attempt in ({"role": "admin"}, {"name": "Eve", "email": "eve@example.com"}, {}):
        rejected = stack.request("PATCH", "/v1/users/me", user.token, json=attempt)
        # Then 422 problem+json, and nothing changed
        assert rejected.status_code == 422, (attempt, rejected.text)
        assert rejected.headers["Content-Type"].startswith("application/problem+json")
        assert rejected.json()["code"] == "validation_error"
    assert stack.request("GET", "/v1/users/me", user.token).json() == body
    # And without a token it is 401
    assert stack.request("PATCH", "/v1/users/me", json={"name": "X"}).status_code == 401


def test_list_get_delete_payment_methods(stack, new_user):
    # Given a user with three cards
    user = new_user()
    first, second, third = (add_card(stack, user) for _ in range(3))
    # When they list two at a time
    page = stack.request("GET", "/v1/users/me/payment-methods?limit=2", user.token)
    assert page.status_code == 200, page.text
    rest = stack.request(
        "GET",
        "/v1/users/me/payment-methods",
        user.token,
        params={"limit": 2, "cursor": page.json()["next_cursor"]},
    )
    # Then newest first, across two pages, with only public fields
    assert [m["id"] for m in page.json()["data"]] == [third, second]
    assert page.json()["has_more"] is True
    assert [m["id"] for m in rest.json()["data"]] == [first]
    assert (rest.json()["has_more"], rest.json()["next_cursor"]) == (False, None)
    assert all(set(m) == PUBLIC_FIELDS for m in page.json()["data"] + rest.json()["data"])
    # When they get one, then delete it
    got = stack.request("GET", f"/v1/users/me/payment-methods/{second}", user.token)
    deleted = stack.request("DELETE", f"/v1/users/me/payment-methods/{second}", user.token)
    # Then it was there, is deleted (204, no body), and is now 404 on get and on delete
    assert got.status_code == 200 and got.json()["id"] == second
    assert (deleted.status_code, deleted.content) == (204, b"")
    for method in ("GET", "DELETE"):
        gone = stack.request(method, f"/v1/users/me/payment-methods/{second}", user.token)
        assert gone.status_code == 404, (method, gone.text)
        assert gone.json()["code"] == "not_found"
    listed = stack.request("GET", "/v1/users/me/payment-methods", user.token).json()
    assert [m["id"] for m in listed["data"]] == [third, first]


def test_another_users_payment_method_is_404_and_their_profile_is_out_of_reach(stack, new_user):
    # Given Alice with a card, and Bob
    alice, bob = new_user("Alice"), new_user("Bob")
    card = add_card(stack, alice)
    alice_before = stack.request("GET", "/v1/users/me", alice.token).json()
    nowhere = f"pm_{'0' * 26}"
    # When Bob gets and deletes Alice's card
    for method in ("GET", "DELETE"):
        theirs = stack.request(method, f"/v1/users/me/payment-methods/{card}", bob.token)
        unknown = stack.request(method, f"/v1/users/me/payment-methods/{nowhere}", bob.token)
        # Then 404, the same as for a card that exists nowhere
        assert theirs.status_code == unknown.status_code == 404, theirs.text
        assert {k: v for k, v in theirs.json().items() if k != "request_id"} == {
            k: v for k, v in unknown.json().items() if k != "request_id"
        }
    # And Bob's PATCH changes only Bob; Alice keeps her card and her profile
    assert stack.request("PATCH", "/v1/users/me", bob.token, json={"name": "M"}).json()["id"] == (
        bob.id
    )
    assert stack.request("GET", f"/v1/users/me/payment-methods/{card}", alice.token).ok
    assert stack.request("GET", "/v1/users/me", alice.token).json() == alice_before


def test_jpy_and_eur_balances(stack, new_user):
    # Given a user with a card
    user = new_user()
    card = add_card(stack, user)
    # When they top up ¥1000 (JPY has no minor unit: 1000 is ¥1000) and €25.00
    for amount, currency in ((1000, "JPY"), (2500, "EUR")):
        topped = stack.request(
            "POST",
            "/v1/top-ups",
            user.token,
            headers={"Idempotency-Key": str(uuid.uuid4())},
            json={"amount": amount, "currency": currency, "payment_method_id": card},
        )
        assert topped.status_code == 201, topped.text
        assert topped.json()["status"] == "succeeded"
    # Then both balances are listed, each in its own currency
    balances = stack.request("GET", "/v1/users/me/balances", user.token)
    assert balances.status_code == 200
    assert sorted(balances.json()["data"], key=lambda b: b["currency"]) == [
        {"currency": "EUR", "available": 2500},
        {"currency": "JPY", "available": 1000},
    ]
