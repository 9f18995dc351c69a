"""The audit with payouts (PROPERTIES 46): Σ balances = card money in - card refunds -
payouts `paid` or `pending`; a pending payout's debit is in flight, never drift or missing."""

from __future__ import annotations

from typing import Any

from cashew import reports
from tests.unit.test_audit_money import audit_of, kinds
from tests.unit.test_ledger_reports import CARD_HOLDER, PAYER, chain_of, payment_record


def payout_record(n: int, user: str, amount: int, status: str, **fields: Any) -> dict[str, Any]:
    """A payout item of the payments table."""
    base = {
        "pk": f"po_{n:026d}", "id": f"po_{n:026d}", "amount": amount, "currency": "USD",
        "payment_method_id": f"pm_{n:026d}", "status": status, "failure_code": None,
        "failure_message": None, "risk": {"score": 0, "level": "normal"},
        "created_at": "2026-11-10T09:30:00.000Z", "updated_at": "2026-11-10T09:30:00.000Z",
        "payout_user_id": user, "gateway_key": "k", "gateway_payout_id": None, "fired_rules": [],
    }  # fmt: skip
    return {**base, **fields}


TOPPED_UP = [payment_record(1, CARD_HOLDER, PAYER, 1_000)]
"""PAYER was paid 1,000 by card, logged."""


def chains() -> list[tuple[str, tuple[list, list]]]:
    return [(PAYER, chain_of(PAYER, [("credit", 1_000)]))]


def test_a_pending_payout_is_in_flight_and_conservation_counts_it(monkeypatch):
    # Given PAYER paid 300 out, still pending at the gateway: the balance is debited, no entry
    records = [*TOPPED_UP, payout_record(2, PAYER, 300, "pending")]
    audit = audit_of(monkeypatch, chains(), [(PAYER, "USD", 700)], records)
    # Then nothing is wrong: the debit is pending, and 700 = 1,000 in - 300 paid out
    assert audit.balances_match and audit.card_money_explained, audit.discrepancies
    assert [(p.outcome_id, p.amount) for p in audit.pending] == [(f"po_{2:026d}:pending", -300)]


def test_a_paid_payout_not_logged_yet_is_in_flight(monkeypatch):
    records = [*TOPPED_UP, payout_record(2, PAYER, 300, "paid")]
    audit = audit_of(monkeypatch, chains(), [(PAYER, "USD", 700)], records)
    assert audit.balances_match and audit.discrepancies == []
    assert [(p.outcome_id, p.amount) for p in audit.pending] == [(f"po_{2:026d}:paid", -300)]


def test_a_failed_payout_moves_nothing(monkeypatch):
    records = [*TOPPED_UP, payout_record(2, PAYER, 300, "failed", failure_code="card_declined")]
    audit = audit_of(monkeypatch, chains(), [(PAYER, "USD", 1_000)], records)
    assert audit.balances_match and audit.discrepancies == [] and audit.pending == []


def test_money_gone_with_no_payout_behind_it_breaks_conservation(monkeypatch):
    # Given a paid payout of 300 but a balance 500 lower (200 left unexplained)
    records = [*TOPPED_UP, payout_record(2, PAYER, 300, "paid")]
    audit = audit_of(monkeypatch, chains(), [(PAYER, "USD", 500)], records)
    # Then the balance and conservation are named, with the payouts in the card figure
    assert ("balance", None) in kinds(audit) and ("conservation", None) in kinds(audit)
    gap = next(d for d in audit.discrepancies if d.kind == "conservation")
    assert (gap.balance, gap.card_balance) == (500, 700)


def test_a_payout_the_balance_does_not_show_is_drift(monkeypatch):
    # Given a pending payout whose debit is not in the balance (an edited balance)
    records = [*TOPPED_UP, payout_record(2, PAYER, 300, "pending")]
    audit = audit_of(monkeypatch, chains(), [(PAYER, "USD", 1_000)], records)
    assert not audit.balances_match
    drift = next(d for d in audit.discrepancies if d.kind == "balance")
    assert (drift.balance, drift.log_balance, drift.pending) == (1_000, 1_000, -300)
    assert reports.HORIZON  # a pending payout never becomes missing_from_log
    assert ("missing_from_log", None) not in kinds(audit)
