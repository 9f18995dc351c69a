"""POST /v1/webhooks/gateway: signed outcomes of processing charges."""

from __future__ import annotations

import json
import time
import uuid

from cashew.gateways.base import sign_webhook
from cashew.payments import store
from local.events import api_event
from tests.integration.conftest import add_card, balance, pay
from tests.support.lambda_runtime import reply

PROCESSING = "4000000000003220"


def _processing_payment(stack, payer, payee, amount=700):
    method = add_card(stack, payer, PROCESSING)
    paid = pay(stack, payer, payee.id, amount, source={"type": "card", "payment_method_id": method})
    assert paid.body["status"] == "processing"
    return paid.body, store.get(paid.body["id"])


def _event(payment_id, charge_id, status="succeeded", amount=700, event_id=None):
    return {
        "id": event_id or f"evt_sbx_{uuid.uuid4().hex[:24]}",
        "type": f"charge.{'failed' if status == 'failed' else 'succeeded'}",
        "data": {
            "charge_id": charge_id,
            "payment_id": payment_id,
            "status": status,
            "failure_code": "card_declined" if status == "failed" else None,
            "amount_captured": amount if status == "succeeded" else 0,
        },
    }


def _deliver(stack, event, *, secret=None, at=None, signature=None):
    body = json.dumps(event, separators=(",", ":"))
    secret = secret or stack.gateway_webhook_secret()
    header = signature or sign_webhook(body.encode(), secret, at or int(time.time()))
    sent = api_event(
        "payments/gateway_webhook.json", raw_body=body, headers={"Gateway-Signature": header}
    )
    return reply(stack.invoke("GatewayWebhookFunction", sent))


def test_a_signed_success_settles_the_processing_payment_once(stack, new_user):
    payer, payee = new_user(), new_user()
    payment, stored = _processing_payment(stack, payer, payee)
    assert balance(stack, payee) == 0
    event = _event(payment["id"], stored.charge_id)
    assert _deliver(stack, event).status == 200
    settled = store.get(payment["id"]).payment
    assert (settled.status, settled.amount_captured) == ("succeeded", 700)
    assert balance(stack, payee) == 700
    # the same event again (the gateway retries): accepted, no second credit
    assert _deliver(stack, event).status == 200
    assert balance(stack, payee) == 700


def test_a_signed_failure_fails_the_payment(stack, new_user):
    payer, payee = new_user(), new_user()
    payment, stored = _processing_payment(stack, payer, payee)
    assert _deliver(stack, _event(payment["id"], stored.charge_id, "failed")).status == 200
    failed = store.get(payment["id"]).payment
    assert (failed.status, failed.failure_code) == ("failed", "card_declined")
    # a late success for the failed payment changes nothing
    assert _deliver(stack, _event(payment["id"], stored.charge_id)).status == 200
    assert balance(stack, payee) == 0


def test_bad_signatures_and_stale_timestamps_are_400_and_change_nothing(stack, new_user):
    payer, payee = new_user(), new_user()
    payment, stored = _processing_payment(stack, payer, payee)
    event = _event(payment["id"], stored.charge_id)
    for rejected in (
        _deliver(stack, event, secret="whsec_wrong"),
        _deliver(stack, event, at=int(time.time()) - 301),
        _deliver(stack, event, signature="t=1,v1=00"),
        _deliver(stack, event, signature="garbage"),
    ):
        assert (rejected.status, rejected.code) == (400, "invalid_signature")
    assert store.get(payment["id"]).payment.status == "processing"


def test_a_webhook_for_an_unknown_payment_is_accepted_and_ignored(stack):
    event = _event("pay_01ZZZZZZZZZZZZZZZZZZZZZZZZ", "ch_sbx_000000000000000000000000")
    assert _deliver(stack, event).status == 200
