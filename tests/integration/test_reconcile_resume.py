"""Reconciliation resumes the card charges whose request died after the gateway call (the
`request#in_progress` row, cashew.payments.resume), in-process against the embedded AWS:
a top-up and a card payment credited exactly once by a later run, a client's retry racing
the run, a lease still running, a method deleted meanwhile, and the sparse ResumeIndex."""

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
from cashew.payments import create, idempotency, reconcile
from cashew.payments import store as payments
from tests.integration.conftest import Died, add_card, balance, pay, top_up
from tests.integration.test_reconcile import _only

LATER = timedelta(minutes=11)  # past CASHEW_RECONCILE_AFTER (600 s) and the lease (60 s)
ROW = idempotency.RESUMABLE


def _dies_after_the_gateway(monkeypatch):
    """The next card charge's completing step raises (the gateway was asked and charged)."""
    asked = []

    def died(self, answer):
        asked.append(answer)
        raise Died

    monkeypatch.setattr(create.CardCharge, "commit", died)
    return asked


def _record(pk):
    return dynamo.get_item(get_settings().idempotency_table, {"pk": pk})


def _indexed(pk):
    later = clock.rfc3339(clock.now() + timedelta(days=365))
    return pk in set(idempotency.due(ROW, later, 100))


def _later(monkeypatch):
    """From now on the clock reads LATER: the request's lease has run out."""
    later = clock.now() + LATER
    monkeypatch.setattr(clock, "now", lambda: later)


def _died_top_up(stack, monkeypatch, payer, amount):
    method = add_card(stack, payer)
    key = str(uuid.uuid4())
    asked = _dies_after_the_gateway(monkeypatch)
    with pytest.raises(Died):
        top_up(stack, payer, method, amount, key)
    monkeypatch.undo()
    assert asked and asked[0].status == "succeeded"  # the card was charged
    return method, key, f"{payer.id}#{key}"


def test_the_record_of_a_card_charge_keeps_its_request_until_it_completes(stack, new_user):
    payer, payee = new_user(), new_user()
    method = add_card(stack, payer)
    key = str(uuid.uuid4())
    seen = {}
    real = create.CardCharge.commit

    def peek(self, answer):
        seen["record"] = _record(self.scope.pk)
        return real(self, answer)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(create.CardCharge, "commit", peek)
        body = {"type": "card", "payment_method_id": method}
        paid = pay(stack, payer, payee.id, 250, key, source=body, description="rent")
    assert paid.status == 201, paid.body
    # While in progress: the operation and the validated body, in ResumeIndex
    record = seen["record"]
    assert record["status"] == "in_progress" and record["open_status"] == ROW
    assert record["open_since"] == record["created_at"]
    assert json.loads(record["kept_request"]) == {
        "operation": "POST /v1/payments",
        "body": {
            "amount": 250, "currency": "USD", "payee_id": payee.id, "description": "rent",
            "source": {"type": "card", "payment_method_id": method}, "capture": True,
        },
    }  # fmt: skip
    assert len(record["kept_request"]) < 400
    # Once completed: neither the request nor the index keys
    done = _record(f"{payer.id}#{key}")
    assert done["status"] == "completed"
    assert not {"kept_request", "open_status", "open_since"} & set(done)
    assert not _indexed(f"{payer.id}#{key}")


def test_a_top_up_whose_function_died_after_the_charge_is_credited_once_by_a_run(
    stack, new_user, monkeypatch
):
    # Given a top-up whose card was charged, but whose function died before completing
    payer = new_user()
    method, key, pk = _died_top_up(stack, monkeypatch, payer, 1_300)
    record = _record(pk)
    assert record["status"] == "in_progress" and _indexed(pk)
    assert balance(stack, payer) == 0
    _only(monkeypatch, pk)
    # When a run happens before CASHEW_RECONCILE_AFTER (its lease run out), Then it is left
    with pytest.MonkeyPatch.context() as patch:
        soon = clock.now() + timedelta(minutes=5)
        patch.setattr(clock, "now", lambda: soon)
        assert not reconcile.run().settled[ROW]
    assert _record(pk)["status"] == "in_progress" and balance(stack, payer) == 0
    # When a run happens after it, Then the same charge is credited, once
    _later(monkeypatch)
    report = reconcile.run()
    assert report.settled[ROW] == 1, report
    assert balance(stack, payer) == 1_300
    done = _record(pk)
    assert done["status"] == "completed" and not _indexed(pk)
    payment = json.loads(done["response_body"])
    assert payment["id"] == record["payment_id"] and payment["status"] == "succeeded"
    assert payments.get(payment["id"]).payment.amount_captured == 1_300
    # And the client's retry replays it; a second run changes nothing
    again = top_up(stack, payer, method, 1_300, key)
    assert again.status == 201 and again.body["id"] == payment["id"]
    assert not reconcile.run().settled[ROW]
    assert balance(stack, payer) == 1_300


def test_a_card_payment_whose_function_died_is_credited_to_the_payee_once(
    stack, new_user, monkeypatch
):
    payer, payee = new_user(), new_user()
    method = add_card(stack, payer)
    key = str(uuid.uuid4())
    asked = _dies_after_the_gateway(monkeypatch)
    with pytest.raises(Died):
        pay(stack, payer, payee.id, 800, key, source={"type": "card"})  # the default card
    monkeypatch.undo()
    assert asked[0].status == "succeeded"
    pk = f"{payer.id}#{key}"
    _only(monkeypatch, pk)
    _later(monkeypatch)
    report = reconcile.run()
    assert report.settled[ROW] == 1, report
    assert balance(stack, payee) == 800 and balance(stack, payer) == 0
    payment = json.loads(_record(pk)["response_body"])
    assert payment["source"] == {"type": "card", "payment_method_id": method}
    assert payment["payer_id"] == payer.id and payment["payee_id"] == payee.id
    again = pay(stack, payer, payee.id, 800, key, source={"type": "card"})
    assert again.status == 201 and again.body["id"] == payment["id"]
    assert balance(stack, payee) == 800


def test_a_record_whose_lease_still_runs_is_left(stack, new_user, monkeypatch):
    payer = new_user()
    _, _, pk = _died_top_up(stack, monkeypatch, payer, 400)
    _only(monkeypatch, pk)
    # Old enough for the index query, but its request may still run (the real clock)
    report = reconcile.run(now=clock.now() + LATER)
    assert report.left[ROW] >= 1 and not report.settled[ROW]
    assert _record(pk)["status"] == "in_progress" and _indexed(pk)
    assert balance(stack, payer) == 0


def test_a_client_retry_completing_first_leaves_the_run_nothing(stack, new_user, monkeypatch):
    payer = new_user()
    method, key, pk = _died_top_up(stack, monkeypatch, payer, 600)
    _only(monkeypatch, pk)
    _later(monkeypatch)
    retried = top_up(stack, payer, method, 600, key)
    assert retried.status == 201 and retried.body["status"] == "succeeded"
    report = reconcile.run()
    assert not report.settled[ROW]
    assert balance(stack, payer) == 600


def test_a_client_retry_racing_the_run_settles_once(stack, new_user, monkeypatch):
    payer = new_user()
    method, key, pk = _died_top_up(stack, monkeypatch, payer, 700)
    _only(monkeypatch, pk)
    _later(monkeypatch)
    barrier, replies, reports = threading.Barrier(2), [], []

    def retry():
        barrier.wait()
        replies.append(top_up(stack, payer, method, 700, key))

    def run():
        barrier.wait()
        reports.append(reconcile.run())

    threads = [threading.Thread(target=retry), threading.Thread(target=run)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # One of them completed it; the retry got the payment (or 409 while the run held it)
    (reply,) = replies
    assert len(reports) == 1
    assert reply.status in (201, 409), reply.body
    assert balance(stack, payer) == 700
    again = top_up(stack, payer, method, 700, key)
    assert again.status == 201 and again.body["id"] == _record(pk)["payment_id"]
    assert not reconcile.run().settled[ROW]
    assert balance(stack, payer) == 700


def test_a_charge_whose_method_was_deleted_is_taken_out_loudly(
    stack, new_user, monkeypatch, caplog
):
    payer = new_user()
    method, _, pk = _died_top_up(stack, monkeypatch, payer, 900)
    deleted = stack.call(
        "DeletePaymentMethodFunction", "accounts/delete_payment_method.json",
        path={"id": method}, authorizer=payer.authorizer,
    )  # fmt: skip
    assert deleted.status == 204, deleted.body
    _only(monkeypatch, pk)
    _later(monkeypatch)
    report = reconcile.run()
    assert report.left[ROW] >= 1 and not report.settled[ROW]
    # Out of the index (not asked again every run), still in progress, said as an error
    assert not _indexed(pk) and _record(pk)["status"] == "in_progress"
    assert balance(stack, payer) == 0
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert any("cannot be resumed" in r.getMessage() for r in errors)


def test_the_resume_index_holds_no_completed_record(stack, new_user):
    payer, payee = new_user(), new_user()
    method = add_card(stack, payer)
    top_up(stack, payer, method, 1_000)
    pay(stack, payer, payee.id, 100)
    pay(stack, payer, payee.id, 100, source={"type": "card", "payment_method_id": method})
    later = clock.rfc3339(clock.now() + timedelta(days=365))
    for pk in idempotency.due(ROW, later, 100):
        record = _record(pk)
        assert record is not None and record["status"] == "in_progress", (pk, record)
        assert "kept_request" in record


def test_a_charge_whose_answer_was_lost_and_never_retried_is_credited_once(
    stack, new_user, monkeypatch
):
    # Given a top-up the gateway charged but whose answer was lost: 409, never retried
    payer = new_user()
    method = add_card(stack, payer)
    gateway = get_gateway()
    real, charged = type(gateway).authorise, []

    def answer_lost(self, *args, **kwargs):
        charged.append(real(self, *args, **kwargs))
        raise GatewayOutcomeUnknownError("read timeout")

    monkeypatch.setattr(type(gateway), "authorise", answer_lost)
    key = str(uuid.uuid4())
    first = top_up(stack, payer, method, 550, key)
    assert first.status == 409, first.body
    monkeypatch.undo()
    pk = f"{payer.id}#{key}"
    assert _record(pk)["lease_until"] == 0 and _indexed(pk)
    # When a run happens after CASHEW_RECONCILE_AFTER, Then the same charge is credited once
    _only(monkeypatch, pk)
    _later(monkeypatch)
    assert reconcile.run().settled[ROW] == 1
    assert balance(stack, payer) == 550
    assert {c.id for c in charged} == {
        payments.get(_record(pk)["payment_id"]).charge_id
    }  # the gateway answered the same charge again
    assert not reconcile.run().settled[ROW]
    assert balance(stack, payer) == 550
