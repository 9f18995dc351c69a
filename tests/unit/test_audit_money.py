"""Issue 10, 1b and 10: the audit flags money no card charge explains, and tells lag (an
outcome committed in the payments table, not yet in the log: `pending`) from drift."""

from __future__ import annotations

from typing import Any

import pytest

from cashew.ledger import reports
from tests.unit.test_ledger_reports import CARD_HOLDER, PAYER, chain_of, payment_record


def audit_of(
    monkeypatch: pytest.MonkeyPatch,
    chains: list[tuple[str, tuple[list, list]]],
    balances: list[tuple[str, str, int]],
    records: list[dict[str, Any]],
) -> reports.Audit:
    monkeypatch.setattr(
        reports.store, "all_chains", lambda: iter([(user, *c) for user, c in chains])
    )
    monkeypatch.setattr(reports.accounts, "all_balances", lambda: iter(balances))
    monkeypatch.setattr(reports.payments, "all_records", lambda: iter(records))
    return reports.audit()


def kinds(audit: reports.Audit) -> set[tuple[str, str | None]]:
    return {(d.kind, d.problem) for d in audit.discrepancies}


def card_refund(n: int, payment: int, amount: int, status: str) -> dict[str, Any]:
    return {
        "pk": f"re_{n:026d}", "id": f"re_{n:026d}", "payment_id": f"pay_{payment:026d}",
        "amount": amount, "currency": "USD", "status": status, "reason": None,
        "created_at": "2026-11-11T09:00:00.000Z", "gateway_refund_id": None,
        "payment_payer_id": CARD_HOLDER, "payment_payee_id": PAYER, "payment_source": "card",
    }  # fmt: skip


def test_a_balance_ahead_of_the_log_by_an_outcome_in_flight_is_pending_not_drift(monkeypatch):
    # Given a card payment of 500 to PAYER, committed (balance credited) but not yet logged
    records = [payment_record(1, CARD_HOLDER, PAYER, 500)]
    # When the admin audits
    audit = audit_of(monkeypatch, [], [(PAYER, "USD", 500)], records)
    # Then the credit is pending and nothing is wrong
    assert audit.balances_match and audit.card_money_explained and audit.discrepancies == []
    assert [(p.user_id, p.outcome_id, p.amount) for p in audit.pending] == [
        (PAYER, f"pay_{1:026d}:succeeded", 500)
    ]


def test_a_pending_card_refund_entry_still_in_flight_is_pending(monkeypatch):
    # Given PAYER was paid 1,000 by card (logged), then refunded 400 to the card: the
    # refund took 400 from PAYER's balance and succeeded, but no refund entry is logged
    records = [payment_record(1, CARD_HOLDER, PAYER, 1_000, amount_refunded=400)]
    records.append(card_refund(1, 1, 400, "succeeded"))
    audit = audit_of(
        monkeypatch, [(PAYER, chain_of(PAYER, [("credit", 1_000)]))], [(PAYER, "USD", 600)], records
    )
    assert audit.balances_match and audit.discrepancies == []
    assert [(p.user_id, p.outcome_id, p.amount) for p in audit.pending] == [
        (PAYER, f"re_{1:026d}:pending", -400)
    ]


def test_a_real_edit_of_a_balance_is_drift_even_with_an_outcome_in_flight(monkeypatch):
    # Given the same in-flight credit of 500, but someone wrote 900 into the balance
    records = [payment_record(1, CARD_HOLDER, PAYER, 500)]
    audit = audit_of(monkeypatch, [], [(PAYER, "USD", 900)], records)
    assert not audit.balances_match and audit.chains_valid
    balance = next(d for d in audit.discrepancies if d.kind == "balance")
    assert (balance.balance, balance.log_balance, balance.pending) == (900, 0, 500)
    # ...and no card charge explains the extra 400 either
    conservation = next(d for d in audit.discrepancies if d.kind == "conservation")
    assert (conservation.balance, conservation.card_balance) == (900, 500)
    assert not audit.card_money_explained


def test_a_capture_above_the_authorised_amount_is_unexplained_money(monkeypatch):
    # Given the forgery of issue 10: 1,000 authorised, 100,000,000 captured, credited, logged
    forged = 100_000_000
    records = [payment_record(1, CARD_HOLDER, PAYER, 1_000, amount_captured=forged)]
    chains = [(PAYER, chain_of(PAYER, [("credit", forged)]))]
    audit = audit_of(monkeypatch, chains, [(PAYER, "USD", forged)], records)
    # Then the balance agrees with the log, but the audit says the money is unexplained
    assert not audit.balances_match and not audit.card_money_explained
    found = {d.problem: d for d in audit.discrepancies}
    assert set(found) == {"captured_above_authorised"}
    assert (
        found["captured_above_authorised"].amount,
        found["captured_above_authorised"].payment_id,
    ) == (
        forged - 1_000,
        f"pay_{1:026d}",
    )


def test_a_log_credit_with_no_payment_behind_it_is_unexplained(monkeypatch):
    chains = [(PAYER, chain_of(PAYER, [("credit", 700)]))]
    audit = audit_of(monkeypatch, chains, [(PAYER, "USD", 700)], [])
    assert not audit.balances_match and not audit.card_money_explained
    assert kinds(audit) == {("unexplained_money", "no_payment"), ("conservation", None)}


def test_a_credit_of_a_payment_that_did_not_succeed_is_unexplained(monkeypatch):
    records = [payment_record(1, CARD_HOLDER, PAYER, 700, status="processing", amount_captured=0)]
    chains = [(PAYER, chain_of(PAYER, [("credit", 700)]))]
    audit = audit_of(monkeypatch, chains, [(PAYER, "USD", 700)], records)
    assert ("unexplained_money", "payment_not_succeeded") in kinds(audit)
    assert not audit.balances_match


def test_refunds_above_the_captured_amount_are_unexplained(monkeypatch):
    records = [payment_record(1, CARD_HOLDER, PAYER, 1_000, amount_refunded=1_200)]
    records += [card_refund(1, 1, 700, "succeeded"), card_refund(2, 1, 500, "succeeded")]
    audit = audit_of(monkeypatch, [], [(PAYER, "USD", -200)], records)
    assert {("unexplained_money", "refunded_above_captured"),
            ("unexplained_money", "refunds_above_captured")} <= kinds(audit)  # fmt: skip
    assert not audit.card_money_explained


def test_a_failed_payment_or_a_decline_credits_nothing_and_audits_clean(monkeypatch):
    records = [payment_record(1, CARD_HOLDER, PAYER, 700, status="failed", amount_captured=0)]
    audit = audit_of(monkeypatch, [], [], records)
    assert audit.balances_match and audit.card_money_explained and audit.discrepancies == []
    assert audit.pending == []  # the failed outcome moves no balance
