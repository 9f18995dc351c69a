"""Reconciliation against the embedded AWS (tables from template.yaml), in-process: stuck
processing payments, expired authorisations, pending card refunds, races with webhooks and
with itself, and the sparse index it pages through."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import timedelta

import pytest

from cashew import clock, dynamo
from cashew.config import get_settings
from cashew.gateways import get_gateway
from cashew.gateways.base import GatewayOutcomeUnknownError
from cashew.payments import create, reconcile
from cashew.payments import store as payments
from cashew.payments.idempotency import RESUMABLE
from local.cfn import REPO_ROOT as REPO
from tests.integration.conftest import Died, add_card, balance, pay, top_up
from tests.integration.test_gateway_webhooks import _deliver, _event
from tests.integration.test_iam_policies import _allowed_attributes, _granted, _Recorder

PROCESSING = "4000000000003220"
LATER = timedelta(minutes=11)  # past CASHEW_RECONCILE_AFTER (600 s)
EXPIRED = timedelta(days=8)  # past CASHEW_AUTHORIZATION_TTL (7 days)


def _card_payment(stack, payer, payee, amount, *, number="4242424242424242", capture=True):
    method = add_card(stack, payer, number)
    paid = pay(
        stack, payer, payee.id, amount,
        source={"type": "card", "payment_method_id": method}, capture=capture,
    )  # fmt: skip
    assert paid.status == 201, paid.body
    return paid.body


def _status(payment_id):
    return payments.get(payment_id).payment.status


def _in_index(pk):
    """Whether `pk` is in ReconcileIndex, under any open status (queried as a run does)."""
    later = clock.rfc3339(clock.now() + timedelta(days=365))
    return any(pk in payments.due(status, later, 100) for status in reconcile.SWEEPS)


def test_a_stuck_processing_payment_is_settled_by_a_run_once(stack, new_user):
    # Given a card payment still processing (its webhook never came)
    payer, payee = new_user(), new_user()
    payment = _card_payment(stack, payer, payee, 700, number=PROCESSING)
    assert payment["status"] == "processing" and _in_index(payment["id"])
    # When a run happens before CASHEW_RECONCILE_AFTER, Then it is left alone
    reconcile.run(now=clock.now() + timedelta(minutes=5))
    assert _status(payment["id"]) == "processing"
    # When a run happens after it, Then the gateway is asked and the payee credited
    report = reconcile.run(now=clock.now() + LATER)
    assert report.settled["payment#processing"] >= 1
    assert _status(payment["id"]) == "succeeded"
    assert balance(stack, payee) == 700
    assert not _in_index(payment["id"])
    # And a second run changes nothing
    reconcile.run(now=clock.now() + LATER)
    assert balance(stack, payee) == 700


def _only(monkeypatch, *pks):
    """Runs act on these records alone (the shared stack holds other tests' open records,
    whose outcomes would be counted with ours)."""
    sweeps = {
        status: reconcile.Sweep(
            sweep.after, lambda pk, settle=sweep.settle: pk in pks and settle(pk), sweep.due
        )
        for status, sweep in reconcile.SWEEPS.items()
    }
    monkeypatch.setattr(reconcile, "SWEEPS", sweeps)


@pytest.mark.parametrize("lands", ["while_asking", "while_writing"])
def test_a_run_a_webhook_and_a_retry_racing_on_one_payment_settle_it_once(
    stack, new_user, monkeypatch, lands
):
    payer, payee = new_user(), new_user()
    # Given one processing payment settled by its webhook alone, for comparison
    stack.skip_changes()
    alone = _card_payment(stack, payer, payee, 300, number=PROCESSING)
    charge_id = payments.get(alone["id"]).charge_id
    assert _deliver(stack, _event(alone["id"], charge_id, amount=300)).status == 200
    outcomes_of_one = stack.settle()
    assert outcomes_of_one >= 1
    # And another whose webhook lands while a run asks the gateway about it, or between the
    # run's read of the payment and its write
    key = str(uuid.uuid4())
    method = add_card(stack, payer, PROCESSING)
    card = {"type": "card", "payment_method_id": method}
    raced = pay(stack, payer, payee.id, 700, key, source=card).body
    raced_charge = payments.get(raced["id"]).charge_id
    webhook = _event(raced["id"], raced_charge, amount=700)
    gateway = get_gateway()
    real_retrieve, real_write = type(gateway).retrieve_charge, dynamo.Transaction.write_retrying
    asked = threading.Event()
    landed: list[int] = []

    def retrieve(self, charge_id):
        if charge_id == raced_charge:
            if lands == "while_asking":
                landed.append(_deliver(stack, webhook).status)
            asked.set()
        return real_retrieve(self, charge_id)

    def write(self):
        if asked.is_set() and lands == "while_writing" and not landed:
            landed.append(0)  # the webhook's own write, inside, passes through
            landed[0] = _deliver(stack, webhook).status
        return real_write(self)

    monkeypatch.setattr(type(gateway), "retrieve_charge", retrieve)
    monkeypatch.setattr(dynamo.Transaction, "write_retrying", write)
    _only(monkeypatch, raced["id"])
    # When the run settles it
    report = reconcile.run(now=clock.now() + LATER)
    # Then the webhook won, the run changed nothing: the payee was credited once, the
    # payment changed once (as many outcomes as one settlement makes)
    assert landed == [200]
    assert report.settled == {} and report.left["payment#processing"] == 1
    assert _status(raced["id"]) == "succeeded"
    assert balance(stack, payee) == 1_000
    assert stack.settle() == outcomes_of_one
    # And the client's retry replays its answer, the webhook again and another run change
    # nothing
    retried = pay(stack, payer, payee.id, 700, key, source=card)
    assert retried.status == 201 and retried.body["id"] == raced["id"]
    assert _deliver(stack, webhook).status == 200
    reconcile.run(now=clock.now() + LATER)
    assert balance(stack, payee) == 1_000
    assert stack.settle() == 0


def test_an_expired_authorisation_is_voided_and_a_fresh_one_left(stack, new_user):
    payer, payee = new_user(), new_user()
    expired = _card_payment(stack, payer, payee, 500, capture=False)
    assert expired["status"] == "requires_capture" and expired["cancellation_reason"] is None
    # When a run happens within CASHEW_AUTHORIZATION_TTL, Then the authorisation is left
    reconcile.run(now=clock.now() + timedelta(days=6))
    assert _status(expired["id"]) == "requires_capture"
    # When one happens after it, Then it is voided: canceled, cancellation_reason "expired"
    reconcile.run(now=clock.now() + EXPIRED)
    stored = payments.get(expired["id"]).payment
    assert (stored.status, stored.cancellation_reason) == ("canceled", "expired")
    assert not _in_index(expired["id"])
    reply = stack.call(
        "GetPaymentFunction", "payments/get_payment.json",
        authorizer=payer.authorizer, path={"id": expired["id"]},
    )  # fmt: skip
    assert reply.body["status"] == "canceled"
    assert reply.body["cancellation_reason"] == "expired"
    assert balance(stack, payee) == 0
    # And an authorisation made now is not old enough yet
    fresh = _card_payment(stack, payer, payee, 500, capture=False)
    reconcile.run(now=clock.now() + timedelta(days=1))
    assert _status(fresh["id"]) == "requires_capture"


def test_the_scheduled_function_voids_what_expired(stack, new_user, monkeypatch):
    payer, payee = new_user(), new_user()
    expired = _card_payment(stack, payer, payee, 500, capture=False)
    later = clock.now() + EXPIRED
    monkeypatch.setattr(clock, "now", lambda: later)
    result = stack.invoke("ReconcileFunction", _sample())
    assert result["settled"]["payment#requires_capture"] >= 1
    assert _status(expired["id"]) == "canceled"


def test_overlapping_runs_settle_each_record_once(stack, new_user):
    payer, payee = new_user(), new_user()
    processing = [_card_payment(stack, payer, payee, 100, number=PROCESSING) for _ in range(3)]
    authorised = [_card_payment(stack, payer, payee, 100, capture=False) for _ in range(3)]
    ours = {p["id"] for p in processing + authorised}
    # When four runs overlap
    reports: list[reconcile.Report] = []
    later = clock.now() + EXPIRED
    runs = [threading.Thread(target=lambda: reports.append(reconcile.run(now=later)))
            for _ in range(4)]  # fmt: skip
    for t in runs:
        t.start()
    for t in runs:
        t.join()
    # Then every record is settled, by one run each, and the money moved once
    assert all(_status(p["id"]) == "succeeded" for p in processing)
    assert all(_status(p["id"]) == "canceled" for p in authorised)
    assert balance(stack, payee) == 300
    assert not any(_in_index(pk) for pk in ours)
    settled = sum(sum(r.settled.values()) for r in reports)
    assert settled >= len(ours)  # others' due records may be settled too, but ours once each


def test_a_pending_card_refund_is_settled_as_its_retry_would(stack, new_user, monkeypatch):
    payer, payee = new_user(), new_user()
    payment = _card_payment(stack, payer, payee, 900)
    gateway = get_gateway()

    def lost(self, charge_id, amount, *, idempotency_key):
        raise GatewayOutcomeUnknownError("read timeout")

    # Given a card refund whose gateway answer was lost: 409, the refund pending
    monkeypatch.setattr(type(gateway), "refund", lost)
    key = str(uuid.uuid4())
    first = stack.call(
        "CreateRefundFunction", "payments/create_refund.json", authorizer=payee.authorizer,
        path={"id": payment["id"]}, body={"amount": 400}, headers={"Idempotency-Key": key},
    )  # fmt: skip
    assert first.status == 409, first.body
    monkeypatch.undo()
    (pending,) = payments.list_refunds(payment["id"], 10, None)[0]
    assert pending.refund.status == "pending" and _in_index(pending.refund.id)
    assert balance(stack, payee) == 500
    # When a run happens after CASHEW_RECONCILE_AFTER
    report = reconcile.run(now=clock.now() + LATER)
    # Then the refund succeeded, nothing moved twice, and the client's retry replays it
    assert report.settled["refund#pending"] >= 1
    assert payments.get_refund(pending.refund.id).refund.status == "succeeded"
    assert not _in_index(pending.refund.id)
    again = stack.call(
        "CreateRefundFunction", "payments/create_refund.json", authorizer=payee.authorizer,
        path={"id": payment["id"]}, body={"amount": 400}, headers={"Idempotency-Key": key},
    )  # fmt: skip
    assert again.status == 201 and again.body["id"] == pending.refund.id
    assert again.body["status"] == "succeeded"
    assert balance(stack, payee) == 500
    assert payments.get(payment["id"]).payment.amount_refunded == 400


def test_a_run_is_bounded_by_its_item_limit(stack, new_user, monkeypatch):
    payer, payee = new_user(), new_user()
    for _ in range(3):
        _card_payment(stack, payer, payee, 100, capture=False)
    bounded = get_settings().model_copy(update={"reconcile_max_items": 2})
    monkeypatch.setattr(reconcile, "get_settings", lambda: bounded)
    report = reconcile.run(now=clock.now() + EXPIRED)
    assert report.seen == 2 and report.bounded


def test_the_index_holds_no_terminal_record(stack, new_user):
    # Given records that went through every kind of write (some settled, some open)
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 1_000)
    pay(stack, payer, payee.id, 100)
    _card_payment(stack, payer, payee, 100, number=PROCESSING)
    _card_payment(stack, payer, payee, 100, capture=False)
    reconcile.run(now=clock.now() + EXPIRED)
    still_open = _card_payment(stack, payer, payee, 100, number=PROCESSING)
    # Then every record in the index is open, in the status its key says
    later = clock.rfc3339(clock.now() + timedelta(days=365))
    seen = 0
    for open_status in reconcile.SWEEPS:
        kind, status = open_status.split("#")
        for pk in payments.due(open_status, later, 100):
            raw = dynamo.get_item(get_settings().payments_table, {"pk": pk})
            assert raw is not None and raw["status"] == status, (pk, raw)
            assert payments.open_key(kind, raw["status"]) == raw["open_status"]
            seen += pk == still_open["id"]
    assert seen == 1


def test_the_function_is_granted_exactly_what_a_run_does(stack, new_user, monkeypatch):
    # Given one record of every kind due: processing, expired, a pending card refund, a card
    # charge whose function died after the gateway call
    payer, payee = new_user(), new_user()
    with monkeypatch.context() as dying:
        dying.setattr(create.CardCharge, "commit", _die)
        with pytest.raises(Died):
            top_up(stack, payer, add_card(stack, payer), 200)
    _card_payment(stack, payer, payee, 200, number=PROCESSING)
    _card_payment(stack, payer, payee, 200, capture=False)
    refunded = _card_payment(stack, payer, payee, 200)
    gateway = get_gateway()
    monkeypatch.setattr(type(gateway), "refund", lambda *a, **k: _lost())
    stack.call(
        "CreateRefundFunction", "payments/create_refund.json", authorizer=payee.authorizer,
        path={"id": refunded["id"]}, body={}, headers={"Idempotency-Key": str(uuid.uuid4())},
    )  # fmt: skip
    # ... a payment awaiting 3-D Secure, and a payout whose outcome the gateway never gave
    _card_payment(stack, payer, payee, 200, number="4000000000003063")
    card = add_card(stack, payer)
    assert top_up(stack, payer, card, 1_000).body["status"] == "succeeded"
    monkeypatch.setattr(type(gateway), "payout", lambda *a, **k: _lost())
    pending = stack.call(
        "CreatePayoutFunction", "payouts/create_payout.json", authorizer=payer.authorizer,
        body={"amount": 300, "currency": "USD", "payment_method_id": card},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )  # fmt: skip
    assert pending.status == 409, pending.body
    monkeypatch.undo()
    later = clock.now() + EXPIRED
    monkeypatch.setattr(clock, "now", lambda: later)
    # When the scheduled function runs, every AWS call recorded
    recorder = _Recorder(stack.resources)
    with recorder.acting_as("ReconcileFunction"):
        result = stack.invoke("ReconcileFunction", _sample())
    kinds = (
        "payment#processing", "payment#requires_capture", "refund#pending",
        "payment#requires_action", "payout#pending", RESUMABLE,
    )  # fmt: skip
    assert all(result["settled"].get(k) for k in kinds), result
    # Then it did nothing its policy does not grant, and its grant is no wider than it needs
    assert recorder.ungranted() == {}
    used, granted = recorder.used["ReconcileFunction"], _granted()["ReconcileFunction"]
    # (DeleteItem on the idempotency table: the abandon of a void a client's cancel raced)
    assert granted - used == {("dynamodb:DeleteItem", "IdempotencyTable")}, sorted(granted - used)
    written = set().union(*(a for a, _, _ in recorder.account_updates["ReconcileFunction"]))
    assert written <= _allowed_attributes("ReconcileFunction")


def _sample():
    """The function's events/ sample: a Scheduled Event, as EventBridge sends it."""
    return json.loads((REPO / "events/payments/reconcile.json").read_text())


def _die(*_):
    raise Died


def _lost():
    raise GatewayOutcomeUnknownError("read timeout")


def test_an_abandoned_3ds_payment_is_failed_after_the_action_ttl_and_a_fresh_one_left(
    stack, new_user
):
    # Given a card payment awaiting 3-D Secure
    payer, payee = new_user(), new_user()
    waiting = _card_payment(stack, payer, payee, 700, number="4000000000003063")
    assert waiting["status"] == "requires_action", waiting
    # When a run happens within CASHEW_ACTION_TTL (24 h), Then it is left for the card holder
    reconcile.run(now=clock.now() + timedelta(hours=23))
    assert _status(waiting["id"]) == "requires_action"
    # When one happens after it, Then it fails with authentication_failed, once, moving nothing
    report = reconcile.run(now=clock.now() + timedelta(hours=25))
    assert report.settled.get("payment#requires_action", 0) >= 1
    stored = payments.get(waiting["id"]).payment
    assert (stored.status, stored.failure_code, stored.next_action) == (
        "failed", "authentication_failed", None,
    )  # fmt: skip
    assert not _in_index(waiting["id"])
    assert balance(stack, payee) == 0
    # And a payment awaiting authentication now is not old enough yet
    fresh = _card_payment(stack, payer, payee, 700, number="4000000000003063")
    reconcile.run(now=clock.now() + timedelta(hours=1))
    assert _status(fresh["id"]) == "requires_action"
