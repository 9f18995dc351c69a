"""Payouts over HTTP against the local stack (API.md "Payouts (v1.1)"): paid, failed and
credited back, the processing card's pending payout settled by the sandbox's own signed
webhook, each logged as the owner's `payout` entry and emailed."""

from __future__ import annotations

import time
import uuid
from typing import Any

import requests

from tests.e2e.conftest import Stack, User, add_card, balance, top_up, wait_for_entries

_SKIP = ("Confirm your Cashew email address", "New sign-in to your Cashew account")


def payout(
    stack: Stack, user: User, amount: int, method_id: str | None, key: str | None = None
) -> requests.Response:
    body: dict[str, Any] = {"amount": amount, "currency": "USD"}
    if method_id is not None:
        body["payment_method_id"] = method_id
    headers = {"Idempotency-Key": key or str(uuid.uuid4())}
    return stack.request("POST", "/v1/payouts", user.token, headers=headers, json=body)


def _until(check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


def _mail(stack: Stack, address: str, subject_part: str) -> list[dict[str, Any]]:
    def found() -> list[dict[str, Any]]:
        reply = stack.http.get(f"{stack.url}/_local/mail.json", params={"to": address}, timeout=10)
        assert reply.status_code == 200, reply.text
        return [
            m for m in reply.json()["data"]
            if m["subject"] not in _SKIP and subject_part in m["subject"]
        ]  # fmt: skip

    return list(_until(found))


def test_a_payout_is_paid_logged_and_emailed(stack, new_user):
    # Given Alice topped up 100.00
    alice = new_user("Alice")
    card = add_card(stack, alice)
    top_up(stack, alice, card, 10_000)
    # When she pays 40.00 out to her card (her default: she names none)
    reply = payout(stack, alice, 4_000, None)
    # Then it is paid, her balance is 60.00, and GET and the list show it
    assert reply.status_code == 201, reply.text
    paid = reply.json()
    assert (paid["status"], paid["payment_method_id"]) == ("paid", card)
    assert balance(stack, alice) == 6_000
    got = stack.request("GET", f"/v1/payouts/{paid['id']}", alice.token)
    assert got.status_code == 200 and got.json() == paid
    listed = stack.request("GET", "/v1/payouts", alice.token).json()
    assert [p["id"] for p in listed["data"]] == [paid["id"]]
    # ... her log holds its payout entry, and her inbox its email
    entries = wait_for_entries(stack, alice.token, type="payout", payment_id=paid["id"])
    assert [(e["status"], e["direction"], e["amount"]) for e in entries] == [
        ("paid", "debit", 4_000)
    ]
    assert len(_mail(stack, alice.email, "paid out")) == 1


def test_a_declined_payout_is_credited_back(stack, new_user):
    bob = new_user("Bob")
    top_up(stack, bob, add_card(stack, bob), 5_000)
    declined = add_card(stack, bob, "4000000000000002")
    reply = payout(stack, bob, 2_000, declined)
    assert reply.status_code == 201, reply.text
    assert (reply.json()["status"], reply.json()["failure_code"]) == ("failed", "card_declined")
    assert balance(stack, bob) == 5_000
    entries = wait_for_entries(stack, bob.token, type="payout")
    assert [(e["status"], e["failure_code"]) for e in entries] == [("failed", "card_declined")]
    assert len(_mail(stack, bob.email, "failed")) == 1


def test_a_pending_payout_is_settled_by_the_sandboxs_webhook(stack, new_user):
    # Given Carol pays out to the processing card
    carol = new_user("Carol")
    top_up(stack, carol, add_card(stack, carol), 5_000)
    slow = add_card(stack, carol, "4000000000003220")
    reply = payout(stack, carol, 1_500, slow)
    assert reply.status_code == 201 and reply.json()["status"] == "pending", reply.text
    payout_id = reply.json()["id"]
    assert balance(stack, carol) == 3_500  # held while pending

    # When the sandbox's signed webhook arrives (a few seconds later)
    def settled() -> str | None:
        status = stack.request("GET", f"/v1/payouts/{payout_id}", carol.token).json()["status"]
        return status if status != "pending" else None

    # Then it is paid, the money stays out, and it is logged once
    assert _until(settled) == "paid"
    assert balance(stack, carol) == 3_500
    entries = wait_for_entries(stack, carol.token, type="payout", payment_id=payout_id)
    assert [e["status"] for e in entries] == ["paid"]


def test_replaying_a_payout_with_its_key_moves_nothing_twice(stack, new_user):
    dan = new_user("Dan")
    card = add_card(stack, dan)
    top_up(stack, dan, card, 5_000)
    key = str(uuid.uuid4())
    first, again = payout(stack, dan, 1_000, card, key), payout(stack, dan, 1_000, card, key)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert balance(stack, dan) == 4_000
