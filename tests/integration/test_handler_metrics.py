"""Every handler wrapped in `metrics.log_metrics` emits a metric on each call its logic
handles (else Powertools warns "No application metrics to publish" on every call), and a
handler whose logic counts nothing is not wrapped."""

from __future__ import annotations

import json
import time
import uuid
import warnings

from cashew.gateways.base import sign_webhook
from tests.integration.conftest import add_card, pay, top_up
from tests.integration.test_disputes import open_dispute, paid_entry, resolve

PASSWORD = "correct horse battery staple"


def emitted(capsys) -> list[str]:
    """The names of the metrics in the EMF documents printed since the last call."""
    names = []
    for line in capsys.readouterr().out.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        for directive in document.get("_aws", {}).get("CloudWatchMetrics", []):
            names += [metric["Name"] for metric in directive["Metrics"]]
    return names


def test_every_refresh_is_counted_whether_it_succeeds_or_not(stack, new_user, capsys):
    # Given a signed-in user
    user = new_user()
    capsys.readouterr()
    # When they refresh, then present a token that is not theirs
    ok = stack.call(
        "RefreshFunction", "auth/refresh.json", body={"refresh_token": user.refresh_token}
    )
    assert ok.status == 200, ok.body
    assert emitted(capsys) == ["SessionRefreshed"]
    bad = stack.call("RefreshFunction", "auth/refresh.json", body={"refresh_token": "rt_ses_x.y"})
    # Then each call is counted
    assert bad.status == 401
    assert emitted(capsys) == ["RefreshFailed"]


def test_a_login_refused_by_the_lockout_is_counted(stack, new_user, capsys):
    # Given an email with the most failures allowed (5)
    user = new_user()
    for _ in range(5):
        body = {"email": user.email, "password": "wrong password, long enough"}
        assert stack.call("LoginFunction", "auth/login.json", body=body).status == 401
    capsys.readouterr()
    # When one more login is tried
    body = {"email": user.email, "password": PASSWORD}
    locked = stack.call("LoginFunction", "auth/login.json", body=body)
    # Then it is refused and counted as throttled
    assert locked.status == 429
    assert emitted(capsys) == ["LoginThrottled"]


def test_resolving_a_dispute_publishes_no_empty_metrics(stack, new_user, new_admin):
    # Given an open dispute of a payment
    stack.skip_changes()
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 1_000)
    payment = pay(stack, payer, payee.id, 600).body
    stack.settle()
    dispute = open_dispute(stack, payer, paid_entry(stack, payer, payment["id"])["id"]).body
    # When an admin resolves it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        answer = resolve(stack, new_admin(), dispute["id"], "lost")
    # Then no empty metrics were flushed (the handler is not wrapped in log_metrics)
    assert answer.status == 200, answer.body
    assert not [w for w in caught if "No application metrics" in str(w.message)]


def test_capture_cancel_and_refund_count_what_they_did(stack, new_user, capsys):
    # Given two card payments held for capture, and a balance payment
    payer, payee = new_user(), new_user()
    card = add_card(stack, payer)
    top_up(stack, payer, card, 2_000)
    source = {"type": "card", "payment_method_id": card}
    held = pay(stack, payer, payee.id, 500, source=source, capture=False).body
    to_cancel = pay(stack, payer, payee.id, 300, source=source, capture=False).body
    paid = pay(stack, payer, payee.id, 400).body
    capsys.readouterr()

    def call(function_id, sample, user, payment_id, **body):
        return stack.call(
            function_id, sample, authorizer=user.authorizer, path={"id": payment_id},
            body=body, headers={"Idempotency-Key": str(uuid.uuid4())},
        )  # fmt: skip

    # When the payee captures one, the payer cancels the other, and the payee refunds
    assert call("CapturePaymentFunction", "payments/capture_payment.json", payee,
        held["id"]).status == 200  # fmt: skip
    assert emitted(capsys) == ["PaymentCaptured"]
    assert call("CancelPaymentFunction", "payments/cancel_payment.json", payer,
        to_cancel["id"]).status == 200  # fmt: skip
    assert emitted(capsys) == ["PaymentCanceled"]
    assert call("CreateRefundFunction", "payments/create_refund.json", payee, paid["id"],
        amount=100).status == 201  # fmt: skip
    # Then each is counted by what it did
    assert emitted(capsys) == ["Refund_succeeded"]


def test_every_verified_webhook_is_counted(stack, capsys):
    # Given a signed event for no payment of ours
    body = json.dumps({"id": f"evt_sbx_{uuid.uuid4().hex[:24]}", "type": "charge.succeeded",
        "data": {"charge_id": "ch_sbx_x", "payment_id": "pay_01JCQ3A0B1C2D3E4F5G6H7J8K9",
                 "status": "succeeded", "failure_code": None, "amount_captured": 1}})  # fmt: skip
    signature = sign_webhook(body.encode(), stack.gateway_webhook_secret(), int(time.time()))
    capsys.readouterr()
    # When it is delivered, then it is accepted and counted as ignored
    answer = stack.call(
        "GatewayWebhookFunction", "payments/gateway_webhook.json", raw_body=body,
        headers={"Gateway-Signature": signature},
    )  # fmt: skip
    assert answer.status == 200, answer.body
    assert emitted(capsys) == ["WebhookIgnored"]
