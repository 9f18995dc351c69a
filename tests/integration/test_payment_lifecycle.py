"""After a payment: read, list, capture, cancel and refund, through the handlers."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from cashew.errors import CashewError
from cashew.identity import Caller
from cashew.payments import after_create
from cashew.payments.models import CaptureRequest, RefundRequest
from tests.integration.conftest import add_card, balance, pay, top_up


def _key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def _card_payment(stack, payer, payee_id, amount, *, capture=True):
    method = add_card(stack, payer)
    reply = pay(
        stack,
        payer,
        payee_id,
        amount,
        source={"type": "card", "payment_method_id": method},
        capture=capture,
    )
    assert reply.status == 201, reply.body
    return reply.body


def _call(stack, function_id, sample, user, payment_id, **variations):
    return stack.call(
        function_id, sample, authorizer=user.authorizer, path={"id": payment_id}, **variations
    )


def _capture(stack, user, payment_id, body=None, headers=None):
    return _call(stack, "CapturePaymentFunction", "payments/capture_payment.json", user, payment_id,
                 body=body or {}, headers=headers or _key())  # fmt: skip


def _cancel(stack, user, payment_id):
    return _call(stack, "CancelPaymentFunction", "payments/cancel_payment.json", user, payment_id,
                 body={}, headers=_key())  # fmt: skip


def _refund(stack, user, payment_id, body=None, headers=None):
    return _call(stack, "CreateRefundFunction", "payments/create_refund.json", user, payment_id,
                 body=body or {}, headers=headers or _key())  # fmt: skip


def test_payer_and_payee_can_read_a_payment_and_nobody_else(stack, new_user):
    payer, payee, stranger = new_user(), new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 1_000)
    paid = pay(stack, payer, payee.id, 100).body
    for user in (payer, payee):
        reply = _call(stack, "GetPaymentFunction", "payments/get_payment.json", user, paid["id"])
        assert (reply.status, reply.body) == (200, paid)
    hidden = _call(stack, "GetPaymentFunction", "payments/get_payment.json", stranger, paid["id"])
    missing = _call(
        stack,
        "GetPaymentFunction",
        "payments/get_payment.json",
        payer,
        "pay_01ZZZZZZZZZZZZZZZZZZZZZZZZ",
    )
    assert hidden.status == missing.status == 404
    assert {k: v for k, v in hidden.body.items() if k != "request_id"} == {
        k: v for k, v in missing.body.items() if k != "request_id"
    }


def test_list_payments_by_role_and_status_newest_first(stack, new_user):
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 300)
    ids = [pay(stack, payer, payee.id, 100).body["id"] for _ in range(3)]
    failed = pay(stack, payer, payee.id, 100).body  # the balance is empty by now
    assert failed["status"] == "failed"
    seen, cursor = [], None
    while True:
        query = {"role": "payee", "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = stack.call(
            "ListPaymentsFunction",
            "payments/list_payments.json",
            authorizer=payee.authorizer,
            query=query,
        )
        assert page.status == 200
        seen += [p["id"] for p in page.body["data"]]
        cursor = page.body["next_cursor"]
        if not page.body["has_more"]:
            break
    assert seen == [failed["id"], *reversed(ids)]
    as_payer = stack.call(
        "ListPaymentsFunction",
        "payments/list_payments.json",
        authorizer=payer.authorizer,
        query={"role": "payer", "status": "failed"},
    )
    assert [p["id"] for p in as_payer.body["data"]] == [failed["id"]]
    bad = stack.call(
        "ListPaymentsFunction",
        "payments/list_payments.json",
        authorizer=payer.authorizer,
        query={"role": "boss"},
    )
    assert bad.status == 422


def test_an_authorisation_is_captured_by_the_payee_partially_and_only_once(stack, new_user):
    payer, payee, stranger = new_user(), new_user(), new_user()
    authorised = _card_payment(stack, payer, payee.id, 1_000, capture=False)
    assert (authorised["status"], authorised["amount_captured"]) == ("requires_capture", 0)
    assert balance(stack, payee) == 0
    assert _capture(stack, payer, authorised["id"]).status == 403
    assert _capture(stack, stranger, authorised["id"]).status == 404
    assert _capture(stack, payee, authorised["id"], {"amount": 1_001}).status == 422
    key = _key()
    captured = _capture(stack, payee, authorised["id"], {"amount": 600}, key)
    assert captured.status == 200
    assert (captured.body["status"], captured.body["amount_captured"]) == ("succeeded", 600)
    assert balance(stack, payee) == 600
    again = _capture(stack, payee, authorised["id"], {"amount": 600}, key)
    assert again.body == captured.body and again.headers.get("Idempotent-Replayed") == "true"
    second = _capture(stack, payee, authorised["id"], {"amount": 400})
    assert (second.status, second.code) == (409, "conflict")
    assert balance(stack, payee) == 600


def test_concurrent_captures_of_one_authorisation_capture_once(stack, new_user):
    payer, payee = new_user(), new_user()
    authorised = _card_payment(stack, payer, payee.id, 900, capture=False)
    caller = Caller(payee.id, payee.session_id, "user")

    def attempt(i):
        try:
            return after_create.capture(caller, authorised["id"], CaptureRequest(), f"capture-{i}")
        except CashewError as error:
            return error

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(attempt, range(4)))
    assert sum(not isinstance(r, CashewError) for r in results) == 1
    assert balance(stack, payee) == 900


def test_cancel_releases_an_authorisation_once(stack, new_user):
    payer, payee = new_user(), new_user()
    authorised = _card_payment(stack, payer, payee.id, 500, capture=False)
    canceled = _cancel(stack, payer, authorised["id"])
    assert (canceled.status, canceled.body["status"]) == (200, "canceled")
    assert _capture(stack, payee, authorised["id"]).status == 409
    assert _cancel(stack, payee, authorised["id"]).status == 409
    succeeded = _card_payment(stack, payer, payee.id, 500)
    assert _cancel(stack, payer, succeeded["id"]).status == 409
    assert balance(stack, payee) == 500


def test_balance_refunds_move_money_back_and_never_exceed_the_capture(stack, new_user):
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 1_000)
    paid = pay(stack, payer, payee.id, 1_000).body
    assert _refund(stack, payer, paid["id"], {"amount": 100}).status == 403
    first = _refund(stack, payee, paid["id"], {"amount": 300, "reason": "requested_by_customer"})
    assert first.status == 201
    assert (first.body["amount"], first.body["status"], first.body["payment_id"]) == (
        300,
        "succeeded",
        paid["id"],
    )
    assert (balance(stack, payer), balance(stack, payee)) == (300, 700)
    assert _refund(stack, payee, paid["id"], {"amount": 701}).status == 422
    rest = _refund(stack, payee, paid["id"])  # no amount: what is left
    assert rest.body["amount"] == 700
    assert (balance(stack, payer), balance(stack, payee)) == (1_000, 0)
    assert _refund(stack, payee, paid["id"], {"amount": 1}).status == 422
    listed = _call(stack, "ListRefundsFunction", "payments/list_refunds.json", payer, paid["id"])
    assert [r["id"] for r in listed.body["data"]] == [rest.body["id"], first.body["id"]]
    payment = _call(
        stack, "GetPaymentFunction", "payments/get_payment.json", payer, paid["id"]
    ).body
    assert payment["amount_refunded"] == 1_000


def test_six_racing_refunds_never_exceed_the_capture(stack, new_user):
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 1_000)
    paid = pay(stack, payer, payee.id, 1_000).body
    caller = Caller(payee.id, payee.session_id, "user")

    def attempt(i):
        try:
            return after_create.refund(caller, paid["id"], RefundRequest(amount=300), f"refund-{i}")
        except CashewError as error:
            return error

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(attempt, range(6)))
    assert sum(not isinstance(r, CashewError) for r in results) == 3
    assert (balance(stack, payer), balance(stack, payee)) == (900, 100)


def test_a_card_payment_is_refunded_to_the_card(stack, new_user):
    payer, payee = new_user(), new_user()
    paid = _card_payment(stack, payer, payee.id, 800)
    assert balance(stack, payee) == 800
    refunded = _refund(stack, payee, paid["id"], {"amount": 500})
    assert (refunded.status, refunded.body["status"]) == (201, "succeeded")
    assert (balance(stack, payer), balance(stack, payee)) == (
        0,
        300,
    )  # the payer gets it on the card


def test_an_admin_can_refund_and_a_payee_without_the_money_cannot(stack, new_user):
    payer, payee, admin = new_user(), new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 500)
    paid = pay(stack, payer, payee.id, 500).body
    drained = pay(stack, payee, payer.id, 400).body
    assert drained["status"] == "succeeded"
    short = _refund(stack, payee, paid["id"], {"amount": 200})
    assert (short.status, short.code) == (409, "conflict")
    admin.authorizer = {**admin.authorizer, "role": "admin"}
    by_admin = _refund(stack, admin, paid["id"], {"amount": 100})
    assert by_admin.status == 201
    assert balance(stack, payee) == 0


@pytest.mark.parametrize("function_id,sample", [
    ("CapturePaymentFunction", "payments/capture_payment.json"),
    ("CancelPaymentFunction", "payments/cancel_payment.json"),
    ("CreateRefundFunction", "payments/create_refund.json"),
])  # fmt: skip
def test_money_posts_on_a_payment_require_an_idempotency_key(stack, new_user, function_id, sample):
    user = new_user()
    reply = stack.call(
        function_id,
        sample,
        authorizer=user.authorizer,
        path={"id": "pay_01ZZZZZZZZZZZZZZZZZZZZZZZZ"},
        body={},
        headers={"Idempotency-Key": ""},
    )
    assert (reply.status, reply.code) == (400, "idempotency_key_missing")
