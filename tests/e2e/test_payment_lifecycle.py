"""After a payment, over HTTP: capture, cancel, refunds and listing, and the log."""

from __future__ import annotations

import time
import uuid

from tests.e2e.conftest import add_card, balance, top_up, wait_for_entries


def _post(stack, user, path, body=None):
    return stack.request(
        "POST", path, user.token, headers={"Idempotency-Key": str(uuid.uuid4())}, json=body or {}
    )


def _card_payment(stack, payer, payee, amount, capture):
    method = add_card(stack, payer)
    reply = _post(stack, payer, "/v1/payments", {
        "amount": amount, "currency": "USD", "payee_id": payee.id,
        "source": {"type": "card", "payment_method_id": method}, "capture": capture,
    })  # fmt: skip
    assert reply.status_code == 201, reply.text
    return reply.json()


def test_authorise_capture_refund_and_list(stack, new_user):
    payer, payee, stranger = new_user(), new_user(), new_user()
    authorised = _card_payment(stack, payer, payee, 1_000, capture=False)
    assert authorised["status"] == "requires_capture"
    path = f"/v1/payments/{authorised['id']}"
    assert stack.request("GET", path, stranger.token).status_code == 404
    captured = _post(stack, payee, f"{path}/capture", {"amount": 800})
    assert (captured.status_code, captured.json()["amount_captured"]) == (200, 800)
    assert balance(stack, payee) == 800
    refunded = _post(stack, payee, f"{path}/refunds", {"amount": 300})
    assert (refunded.status_code, refunded.json()["status"]) == (201, "succeeded")
    assert balance(stack, payee) == 500
    refunds = stack.request("GET", f"{path}/refunds", payer.token).json()["data"]
    assert [r["amount"] for r in refunds] == [300]
    listed = stack.request("GET", "/v1/payments?role=payee&status=succeeded", payee.token).json()
    assert [p["id"] for p in listed["data"]] == [authorised["id"]]
    assert stack.request("GET", path, payer.token).json()["amount_refunded"] == 300
    [refund_entry] = wait_for_entries(stack, payee.token, type="refund")
    assert (refund_entry["direction"], refund_entry["amount"]) == ("debit", 300)


def test_cancel_and_a_balance_refund(stack, new_user):
    payer, payee = new_user(), new_user()
    authorised = _card_payment(stack, payer, payee, 400, capture=False)
    canceled = _post(stack, payer, f"/v1/payments/{authorised['id']}/cancel")
    assert (canceled.status_code, canceled.json()["status"]) == (200, "canceled")
    assert _post(stack, payee, f"/v1/payments/{authorised['id']}/capture").status_code == 409
    top_up(stack, payer, add_card(stack, payer), 1_000)
    paid = _post(stack, payer, "/v1/payments", {
        "amount": 600, "currency": "USD", "payee_id": payee.id, "source": {"type": "balance"},
    }).json()  # fmt: skip
    assert _post(stack, payer, f"/v1/payments/{paid['id']}/refunds").status_code == 403
    refunded = _post(stack, payee, f"/v1/payments/{paid['id']}/refunds")
    assert refunded.json()["amount"] == 600
    assert (balance(stack, payer), balance(stack, payee)) == (1_000, 0)


def test_a_processing_card_completes_by_the_sandboxs_signed_webhook(stack, new_user):
    # Given a card the sandbox answers "processing" for, and answers later by webhook
    payer, payee = new_user(), new_user()
    method = add_card(stack, payer, "4000000000003220")
    paid = _post(stack, payer, "/v1/payments", {
        "amount": 900, "currency": "USD", "payee_id": payee.id,
        "source": {"type": "card", "payment_method_id": method},
    }).json()  # fmt: skip
    assert paid["status"] == "processing"
    assert balance(stack, payee) == 0
    # When the webhook arrives a few seconds later, Then the payment succeeded and paid out
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        status = stack.request("GET", f"/v1/payments/{paid['id']}", payer.token).json()["status"]
        if status != "processing":
            break
        time.sleep(0.5)
    assert status == "succeeded"
    assert balance(stack, payee) == 900


def test_an_unsigned_webhook_is_400(stack):
    reply = stack.request("POST", "/v1/webhooks/gateway", json={"id": "evt_x"})
    assert (reply.status_code, reply.json()["code"]) == (400, "invalid_signature")
