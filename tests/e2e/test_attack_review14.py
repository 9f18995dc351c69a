"""The review of issue 14 as an attacker and an auditor, over HTTP against the local stack:
the caller's export holds their payouts (and nobody else's), and malformed payout webhooks
that carry a valid signature are refused with a 4xx, never a 500, with nothing moved."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from cashew.gateways.base import sign_webhook
from tests.e2e.conftest import Stack, User, add_card, balance, gateway_webhook_secret, top_up
from tests.e2e.test_payouts import payout


def _export(stack: Stack, user: User) -> list[dict[str, Any]]:
    """Every page of the user's export, followed to the end."""
    pages: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        path = "/v1/users/me/export" + (f"?cursor={cursor}" if cursor else "")
        reply = stack.request("GET", path, user.token)
        assert reply.status_code == 200, reply.text
        pages.append(reply.json())
        cursor = pages[-1]["next_cursor"]
        if cursor is None:
            return pages


def test_the_export_holds_the_callers_payouts_and_no_one_elses(stack, new_user):
    # Given a user with a paid and a failed payout, and another user with one of their own
    user, other = new_user(), new_user()
    card = add_card(stack, user)
    top_up(stack, user, card, 5_000)
    paid = payout(stack, user, 1_000, card).json()
    failed = payout(stack, user, 500, add_card(stack, user, "4000000000000002")).json()
    assert (paid["status"], failed["status"]) == ("paid", "failed")
    top_up(stack, other, add_card(stack, other), 5_000)
    theirs = payout(stack, other, 700, None).json()
    # When the user exports everything stored about them (API.md: "... payments, payouts ...")
    exported = [p for page in _export(stack, user) for p in page.get("payouts", [])]
    # Then both of their payouts are there, as GET /v1/payouts/{id} shows them, and only theirs
    assert {p["id"] for p in exported} == {paid["id"], failed["id"]}
    for p in exported:
        shown = stack.request("GET", f"/v1/payouts/{p['id']}", user.token).json()
        assert p == shown
        assert "fired_rules" not in p and "gateway_key" not in p
    assert theirs["id"] not in json.dumps(exported)


def _post_signed(stack: Stack, event: dict[str, Any]) -> int:
    body = json.dumps(event).encode()
    signature = sign_webhook(body, gateway_webhook_secret(stack), int(time.time()))
    headers = {"Gateway-Signature": signature, "Content-Type": "application/json"}
    reply = stack.request("POST", "/v1/webhooks/gateway", data=body, headers=headers)
    return reply.status_code


def test_malformed_signed_payout_webhooks_are_4xx_or_ignored_and_move_nothing(stack, new_user):
    # Given a pending payout (the processing card's)
    user = new_user()
    top_up(stack, user, add_card(stack, user), 5_000)
    pending = payout(stack, user, 2_000, add_card(stack, user, "4000000000003220")).json()
    assert pending["status"] == "pending"
    good = {"gateway_payout_id": "po_sbx_x", "payout_id": pending["id"], "failure_code": None,
            "amount": 2_000, "currency": "USD"}  # fmt: skip
    malformed: list[dict[str, Any]] = [
        {k: v for k, v in good.items() if k != "gateway_payout_id"},
        good | {"payout_id": "po_" + "A" * 5000},
        good | {"payout_id": ["po_x"]},
        good | {"amount": "lots"},
        good | {"amount": 1e300},
        good | {"currency": 12},
        good | {"failure_code": "free_money"},
    ]
    for data in malformed:
        event = {"id": f"evt_sbx_{uuid.uuid4().hex[:24]}", "type": "payout.failed", "data": data}
        # Then each is refused (4xx) or accepted and ignored (200), never a 500
        assert _post_signed(stack, event) in (200, 400, 422), data
    for other_type in ("payout.failed", "payout.created"):
        event = {"id": f"evt_sbx_{uuid.uuid4().hex[:24]}", "type": other_type, "data": None}
        assert _post_signed(stack, event) in (200, 400, 422)
    # And the payout is settled by the sandbox's genuine webhook, nothing credited back
    deadline = time.monotonic() + 30
    status = "pending"
    while status == "pending" and time.monotonic() < deadline:
        status = stack.request("GET", f"/v1/payouts/{pending['id']}", user.token).json()["status"]
        time.sleep(0.3)
    assert status == "paid"
    assert balance(stack, user) == 3_000
