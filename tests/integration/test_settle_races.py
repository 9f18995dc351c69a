"""Races that settle one payout whose answer was lost, or one processing card payment
(PROPERTIES 46-48, issue 14 "done when" 3): the gateway's webhook, the client's retry with
its key and a reconciliation run, in real threads against the embedded endpoint (which
serialises their requests, so every interleaving of their reads and conditional writes can
occur). Whichever wins, it is settled once: one money move (a payout's debit, and for a
failure one credit back; a payment's credit), one log entry per party, one email per
recipient, even with the bus's events delivered twice."""

from __future__ import annotations

import json
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest

from cashew import clock
from cashew.gateways.base import sign_webhook
from cashew.gateways.sandbox import PAYOUT_PREFIX, SandboxGateway, _digest
from cashew.ledger import face as ledger
from cashew.payments import reconcile
from cashew.payments import store as payments
from cashew.payouts import face
from cashew.payouts import store as payouts_store
from tests.integration.conftest import add_card, balance, pay
from tests.integration.test_gateway_webhooks import _deliver, _event
from tests.integration.test_payout_outcomes import _events, _function_env, _mail_to, _send
from tests.integration.test_payouts import _Flaky, deliver, funded, payout

__all__ = ["_function_env"]  # autouse: SendEmailsFunction's variables

LATER = timedelta(minutes=11)  # past CASHEW_RECONCILE_AFTER


@pytest.fixture
def flaky(monkeypatch) -> _Flaky:
    from cashew import gateways

    flaky = _Flaky(gateways.get_gateway())
    monkeypatch.setattr("cashew.payouts.settle.get_gateway", lambda: flaky)
    return flaky


def _webhook(stack: Any, payout_id: str, status: str) -> tuple[bytes, str]:
    """The gateway's signed event for the payout, as the sandbox builds it."""
    stored = payouts_store.get(payout_id)
    assert stored is not None
    p = stored.payout
    gateway_id = PAYOUT_PREFIX + _digest(stored.gateway_key)
    event = SandboxGateway(secret=stack.gateway_webhook_secret()).payout_event(
        gateway_id, p.amount, p.currency, stored.gateway_key, p.id
    )
    if status == "failed":
        event["type"] = "payout.failed"
        event["data"]["failure_code"] = "card_declined"
    body = json.dumps(event).encode()
    return body, sign_webhook(body, stack.gateway_webhook_secret(), int(time.time()))


@pytest.mark.parametrize(
    ("number", "status", "left"), [("4242424242424242", "paid", 7_000),
                                   ("4000000000000002", "failed", 10_000)]
)  # fmt: skip
@pytest.mark.parametrize("round_", range(3))
def test_a_webhook_a_retry_and_a_run_racing_on_one_payout_settle_it_once(
    stack, new_user, flaky, number, status, left, round_
):
    # Given a payout of 30.00 of 100.00 whose answer was lost (pending, its money held)
    stack.skip_changes()
    user, _ = funded(stack, new_user)
    card = add_card(stack, user, number)
    stack.settle()
    _events(stack)
    key = str(uuid.uuid4())
    assert payout(stack, user, 3_000, card, key).status == 409
    payout_id = payouts_store.list_payouts(user.id, 1, None).data[0].id
    assert balance(stack, user) == 7_000
    flaky.down = False
    body, signature = _webhook(stack, payout_id, status)
    # When its webhook, the client's retry and a run race on it
    answers: dict[str, Any] = {}
    racers = {
        "webhook": lambda: deliver(stack, body, signature).status,
        "retry": lambda: payout(stack, user, 3_000, card, key),
        "run": lambda: reconcile.run(now=clock.now() + LATER, more=face.SWEEPS),
    }
    threads = [
        threading.Thread(target=lambda n=name, f=f: answers.__setitem__(n, f()))
        for name, f in racers.items()
    ]
    for thread in threads[round_:] + threads[:round_]:  # each starts first once
        thread.start()
    for thread in threads:
        thread.join(60)
    # Then each was answered, and the payout settled as the gateway says, once
    assert answers["webhook"] == 200
    retry = answers["retry"]
    assert retry.status == 201, retry.body
    assert (retry.body["id"], retry.body["status"]) == (payout_id, status)
    settled = payouts_store.get(payout_id).payout
    assert settled.status == status
    # ... one money move: the debit, and for a failure one credit back
    assert balance(stack, user) == left
    # ... one log entry for its owner
    stack.settle()
    entry = ledger.entry_for_outcome(user.id, f"{payout_id}:{status}")
    assert entry is not None and entry.type == "payout"
    items, _ = ledger.chain_items(user.id)
    of_it = [i for i in items if (i.fields or {}).get("payment_id") == payout_id]
    assert len(of_it) == 1, of_it
    # ... one email, even with the bus's events delivered twice
    messages = [m for m in _events(stack) if payout_id in m["Body"]]
    assert [json.loads(m["Body"])["detail-type"] for m in messages] == [f"payout.{status}"]
    before = len(_mail_to(user.email))
    assert _send(stack, messages).error is None
    assert _send(stack, messages).error is None
    assert len(_mail_to(user.email)) - before == 1
    # ... and all of it again changes nothing
    assert deliver(stack, body, signature).status == 200
    assert payout(stack, user, 3_000, card, key).body == retry.body
    reconcile.run(now=clock.now() + LATER, more=face.SWEEPS)
    assert balance(stack, user) == left
    assert stack.settle() == 0


@pytest.mark.parametrize("round_", range(3))
def test_a_webhook_a_retry_and_a_run_racing_on_one_processing_payment_settle_it_once(
    stack, new_user, round_
):
    # Given a card payment of 7.00 still processing (its webhook not yet delivered)
    stack.skip_changes()
    payer, payee = new_user(), new_user()
    method = add_card(stack, payer, "4000000000003220")
    card = {"type": "card", "payment_method_id": method}
    key = str(uuid.uuid4())
    made = pay(stack, payer, payee.id, 700, key, source=card)
    assert made.status == 201 and made.body["status"] == "processing", made.body
    payment_id = made.body["id"]
    stack.settle()
    _events(stack)
    webhook = _event(payment_id, payments.get(payment_id).charge_id, amount=700)
    # When its webhook, the client's retry and a run race on it
    answers: dict[str, Any] = {}
    racers = {
        "webhook": lambda: _deliver(stack, webhook).status,
        "retry": lambda: pay(stack, payer, payee.id, 700, key, source=card),
        "run": lambda: reconcile.run(now=clock.now() + LATER),
    }
    threads = [
        threading.Thread(target=lambda n=name, f=f: answers.__setitem__(n, f()))
        for name, f in racers.items()
    ]
    for thread in threads[round_:] + threads[:round_]:  # each starts first once
        thread.start()
    for thread in threads:
        thread.join(60)
    # Then the payment succeeded once: the payee credited once, the retry its replay
    assert answers["webhook"] == 200
    assert answers["retry"].status == 201 and answers["retry"].body["id"] == payment_id
    assert payments.get(payment_id).payment.status == "succeeded"
    assert balance(stack, payee) == 700
    # ... one log entry per party of its success
    stack.settle()
    for user in (payer, payee):
        items, _ = ledger.chain_items(user.id)
        of_it = [i for i in items if (i.fields or {}).get("payment_id") == payment_id]
        statuses = [i.fields["status"] for i in of_it]  # a `processing` entry may come first
        assert statuses.count("succeeded") == 1 and len(set(statuses)) == len(statuses), of_it
    # ... one email per recipient, even with the bus's events delivered twice
    messages = [m for m in _events(stack) if payment_id in m["Body"]]
    assert [json.loads(m["Body"])["detail-type"] for m in messages] == ["payment.succeeded"]
    before = {u.email: len(_mail_to(u.email)) for u in (payer, payee)}
    assert _send(stack, messages).error is None
    assert _send(stack, messages).error is None
    assert {u.email: len(_mail_to(u.email)) - before[u.email] for u in (payer, payee)} == {
        payer.email: 1,
        payee.email: 1,
    }
    # ... and all of it again changes nothing
    assert _deliver(stack, webhook).status == 200
    reconcile.run(now=clock.now() + LATER)
    assert balance(stack, payee) == 700
    assert stack.settle() == 0
