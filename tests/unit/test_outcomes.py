"""Which change of the payments table publishes what (cashew.outcomes)."""

from __future__ import annotations

from typing import Any

import pytest

from cashew import dynamo, outcomes

PAYER, PAYEE = "usr_01J0000000000000000000PAYR", "usr_01J0000000000000000000PAYE"


def _payment(status: str, **changes: Any) -> dict[str, Any]:
    return {
        "pk": "pay_01J00000000000000000000001", "id": "pay_01J00000000000000000000001",
        "type": "payment", "status": status, "amount": 900, "currency": "USD",
        "payer_id": PAYER, "payee_id": PAYEE, "source": {"type": "balance"},
        "amount_captured": 900 if status == "succeeded" else 0, "amount_refunded": 0,
        "failure_code": None, "failure_message": None, "risk": {"score": 0, "level": "normal"},
        "description": None, "created_at": "2026-11-30T10:00:00.000Z",
        "updated_at": "2026-11-30T10:00:01.000Z", "fired_rules": ["card_risk_flag"],
        "charge_id": "ch_secret", **changes,
    }  # fmt: skip


def _refund(status: str) -> dict[str, Any]:
    return {
        "pk": "re_01J00000000000000000000001", "id": "re_01J00000000000000000000001",
        "payment_id": "pay_01J00000000000000000000001", "amount": 300, "currency": "USD",
        "status": status, "reason": None, "created_at": "2026-11-30T11:00:00.000Z",
        "gateway_refund_id": None, "payment_payer_id": PAYER, "payment_payee_id": PAYEE,
        "payment_source": "card",
    }  # fmt: skip


def _dispute(status: str, **changes: Any) -> dict[str, Any]:
    return {
        "pk": "dsp_01J00000000000000000000001", "id": "dsp_01J00000000000000000000001",
        "kind": "dispute", "transaction_id": "txn_01J00000000000000000000001",
        "payment_id": "pay_01J00000000000000000000001", "payer_id": PAYER, "payee_id": PAYEE,
        "status": status, "reason": "fraudulent", "details": None, "amount": 900,
        "currency": "USD", "source": "card", "refund_id": None,
        "created_at": "2026-11-30T12:00:00.000Z", "updated_at": "2026-11-30T12:30:00.000Z",
        "resolved_at": None, "resolved_by": "usr_01J000000000000000000ADMIN", "note": "internal",
        **changes,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new", "event", "outcome_status"),
    [
        (None, "succeeded", "payment.succeeded", "succeeded"),
        (None, "failed", "payment.failed", "failed"),
        (None, "requires_capture", None, "requires_capture"),
        (None, "processing", None, "processing"),
        ("requires_capture", "succeeded", "payment.captured", "succeeded"),
        ("requires_capture", "canceled", "payment.canceled", "canceled"),
        ("processing", "succeeded", "payment.succeeded", "succeeded"),
        ("processing", "failed", "payment.failed", "failed"),
    ],
)
def test_each_change_of_a_payments_status_is_an_outcome(old, new, event, outcome_status):
    change = outcomes.of_images(_payment(old) if old else None, _payment(new))
    assert change is not None
    assert change.event == event
    assert change.outcome.status == outcome_status
    assert change.outcome.outcome_id == f"pay_01J00000000000000000000001:{outcome_status}"
    assert (change.outcome.payer_id, change.outcome.payee_id) == (PAYER, PAYEE)
    assert change.detail["outcome_id"] == change.outcome.outcome_id
    assert "fired_rules" not in change.detail and "charge_id" not in change.detail


def test_a_partial_capture_moves_what_was_captured():
    change = outcomes.of_images(
        _payment("requires_capture"), _payment("succeeded", amount_captured=600)
    )
    assert change is not None and change.outcome.amount == 600


def test_changes_that_keep_the_status_publish_nothing():
    refunded = _payment("succeeded", amount_refunded=300)
    assert outcomes.of_images(_payment("succeeded"), refunded) is None
    assert outcomes.of_images(_payment("succeeded"), None) is None  # a removal


def test_markers_publish_nothing():
    assert outcomes.of_images(None, {"pk": "WEBHOOK#evt_1", "expires_at": 1}) is None


def test_a_card_refund_is_an_outcome_when_taken_and_again_when_it_reaches_the_card():
    taken = outcomes.of_images(None, _refund("pending"))
    assert taken is not None and taken.event is None  # for the log only
    assert (taken.outcome.status, taken.outcome.outcome_id) == (
        "pending", "re_01J00000000000000000000001:pending",
    )  # fmt: skip
    for old in (None, _refund("pending")):
        change = outcomes.of_images(old, _refund("succeeded"))
        assert change is not None
        assert change.event == "refund.succeeded"
        assert change.outcome.type == "refund"
        assert (change.outcome.payer_id, change.outcome.payee_id) == (PAYER, PAYEE)
        assert change.outcome.amount == 300
        assert change.outcome.source == "card"  # how the payer paid: the card is credited
        assert "payment_payer_id" not in change.detail
        assert "payment_source" not in change.detail


@pytest.mark.parametrize(
    ("old", "new", "event"),
    [
        (None, "open", "dispute.opened"),
        ("open", "won", "dispute.won"),
        ("open", "lost", "dispute.lost"),
    ],
)
def test_each_change_of_a_disputes_status_is_an_outcome(old, new, event):
    change = outcomes.of_images(_dispute(old) if old else None, _dispute(new))
    assert change is not None and change.event == event
    assert change.outcome.outcome_id == f"dsp_01J00000000000000000000001:{new}"
    assert (change.outcome.type, change.outcome.status) == ("dispute", new)
    assert (change.outcome.payment_id, change.outcome.amount) == (
        "pay_01J00000000000000000000001",
        900,
    )
    assert change.outcome.occurred_at == "2026-11-30T12:30:00.000Z"
    # the bus gets what payer and payee may see: not the admin's note, nor who resolved it
    assert "note" not in change.detail and "resolved_by" not in change.detail


def test_claiming_a_dispute_and_its_lock_publish_nothing():
    assert outcomes.of_images(_dispute("open"), _dispute("open", pending_outcome="won")) is None
    lock = {"pk": "OPEN#pay_01J00000000000000000000001", "dispute_id": "dsp_1"}
    assert outcomes.of_images(None, lock) is None


def test_a_stream_record_is_read_from_its_images():
    record = {
        "eventName": "MODIFY",
        "dynamodb": {
            "OldImage": dynamo.serialize(_payment("requires_capture")),
            "NewImage": dynamo.serialize(_payment("canceled")),
        },
    }
    change = outcomes.of_stream_record(record)
    assert change is not None and change.event == "payment.canceled"
