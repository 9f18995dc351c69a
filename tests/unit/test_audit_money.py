"""Issue 10, 1b and 10: the audit flags money no card charge explains, and tells lag (an
outcome committed in the payments table, not yet in the log: `pending`) from drift."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from cashew import reports
from cashew.ledger import chain
from tests.unit.test_ledger_reports import (
    CARD_HOLDER,
    PAYEE,
    PAYER,
    chain_of,
    fake_stores,
    payment_record,
)


def audit_of(
    monkeypatch: pytest.MonkeyPatch,
    chains: list[tuple[str, tuple[list, list]]],
    balances: list[tuple[str, str, int]],
    records: list[dict[str, Any]],
) -> reports.Audit:
    fake_stores(monkeypatch, chains, balances, records)
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


def test_an_outcome_not_logged_past_the_stream_horizon_is_missing_not_in_flight(monkeypatch):
    # Given a card payment of 500 to PAYER committed at 09:00 and never logged
    records = [payment_record(1, CARD_HOLDER, PAYER, 500)]
    balances = [(PAYER, "USD", 500)]
    # When the admin audits 25 hours later, past what the stream keeps
    later = datetime(2026, 11, 11, 10, 0, tzinfo=UTC)
    fake_stores(monkeypatch, [], balances, records, now=later)
    audit = reports.audit()
    # Then it is not in flight any more: it is missing from the log, and that is drift
    assert not audit.balances_match and audit.card_money_explained and audit.pending == []
    missing = {
        (d.user_id, d.outcome_id, d.payment_id, d.currency, d.amount, d.since)
        for d in audit.discrepancies
        if d.kind == "missing_from_log"
    }
    outcome, at = f"pay_{1:026d}:succeeded", "2026-11-10T09:00:00.000Z"
    assert missing == {
        (PAYER, outcome, f"pay_{1:026d}", "USD", 500, at),
        (CARD_HOLDER, outcome, f"pay_{1:026d}", "USD", 0, at),  # the card's side moves none
    }
    assert {d.kind for d in audit.discrepancies} == {"missing_from_log"}


def test_a_card_refund_settles_up_to_an_idempotency_lifetime_after_its_creation(monkeypatch):
    # Given a card refund created on the 11th at 09:00, settled at some unrecorded time, not logged
    records = [payment_record(1, CARD_HOLDER, PAYER, 1_000, amount_refunded=400)]
    records.append(card_refund(1, 1, 400, "succeeded"))
    chains = [(PAYER, chain_of(PAYER, [("credit", 1_000)]))]
    # When audited 25 h later, the settlement may have happened an hour ago: in flight
    fake_stores(monkeypatch, chains, [(PAYER, "USD", 600)], records,
                now=datetime(2026, 11, 12, 10, 0, tzinfo=UTC))  # fmt: skip
    refund = f"re_{1:026d}:succeeded"
    audit = reports.audit()
    assert refund not in {d.outcome_id for d in audit.discrepancies}
    # ...but 49 h later it cannot be in flight any more
    fake_stores(monkeypatch, chains, [(PAYER, "USD", 600)], records,
                now=datetime(2026, 11, 13, 10, 0, tzinfo=UTC))  # fmt: skip
    audit = reports.audit()
    assert refund in {d.outcome_id for d in audit.discrepancies if d.kind == "missing_from_log"}
    assert not audit.balances_match


def test_a_payment_committed_between_the_reads_is_in_flight_not_drift(monkeypatch):
    # Given PAYER topped up 1,000 by card (logged), and traffic: a top-up of 250 commits
    # after every read of the balances and before every scan of the payments
    chains = [(PAYER, chain_of(PAYER, [("credit", 1_000)]))]
    balances = [(PAYER, "USD", 1_000)]
    records = [payment_record(1, CARD_HOLDER, PAYER, 1_000)]
    fake_stores(monkeypatch, chains, balances, records)
    whole_scan = reports.payments.all_records

    def commit_then_scan() -> Any:
        records.append(payment_record(len(records) + 1, CARD_HOLDER, PAYER, 250))
        balances[0] = (PAYER, "USD", balances[0][2] + 250)
        return whole_scan()

    monkeypatch.setattr(reports.payments, "all_records", commit_then_scan)
    # When the admin audits
    audit = reports.audit()
    # Then the re-check sees the balance with the top-up in it: nothing is wrong
    assert audit.balances_match and audit.card_money_explained and audit.discrepancies == []
    assert [(p.user_id, p.amount) for p in audit.pending] == [(PAYER, 250)]


def test_drift_found_on_every_re_read_is_reported_after_a_bounded_number(monkeypatch):
    # Given a balance payment of 100 from PAYER to PAYEE, in flight, and balances someone
    # swapped (their sum is still what cards brought in: conservation holds)
    records = [payment_record(1, PAYER, PAYEE, 100, source="balance")]
    balances = [(PAYER, "USD", 100), (PAYEE, "USD", -100)]
    fake_stores(monkeypatch, [], balances, records)
    reads: list[str] = []
    narrow = reports.accounts.balances_of
    monkeypatch.setattr(reports.accounts, "balances_of", lambda u: reads.append(u) or narrow(u))
    audit = reports.audit()
    found = {(d.kind, d.user_id): d for d in audit.discrepancies}
    assert set(found) == {("balance", PAYER), ("balance", PAYEE)}
    assert (found["balance", PAYEE].balance, found["balance", PAYEE].pending) == (-100, 100)
    assert not audit.balances_match
    assert len(reads) == reports.RECHECKS * 2  # each user re-read RECHECKS times, no more


def test_a_real_gap_during_traffic_is_reported_without_the_lag(monkeypatch):
    # Given the same traffic on PAYER, and 7 that someone wrote into PAYEE's balance
    chains = [(PAYER, chain_of(PAYER, [("credit", 1_000)]))]
    balances = [(PAYER, "USD", 1_000), (PAYEE, "USD", 7)]
    records = [payment_record(1, CARD_HOLDER, PAYER, 1_000)]
    fake_stores(monkeypatch, chains, balances, records)
    whole_scan = reports.payments.all_records

    def commit_then_scan() -> Any:
        records.append(payment_record(len(records) + 1, CARD_HOLDER, PAYER, 250))
        balances[0] = (PAYER, "USD", balances[0][2] + 250)
        return whole_scan()

    monkeypatch.setattr(reports.payments, "all_records", commit_then_scan)
    audit = reports.audit()
    # Then PAYEE's balance and USD's conservation are drift, by 7 and not by 7 - 250
    found = {(d.kind, d.user_id): d for d in audit.discrepancies}
    assert set(found) == {("balance", PAYEE), ("conservation", None)}
    gap = found["conservation", None]
    assert (gap.balance, gap.card_balance) == (1_257, 1_250)
    assert not audit.balances_match and not audit.card_money_explained


# ------------------------------------------- the audit job's sweep, a few users at a time


def swept(*batches: list[str]) -> list[reports.Discrepancy]:
    """What `audit_users` finds over these batches of users, in turn; every user exists."""
    audits = [reports.audit_users(users, lambda _: True) for users in batches]
    return [d for audit in audits for d in audit.discrepancies]


def test_the_sweep_names_a_capture_above_the_authorised_amount_once_with_its_payer(monkeypatch):
    # Given the forgery of issue 10, logged and credited
    forged = 100_000_000
    records = [payment_record(1, CARD_HOLDER, PAYER, 1_000, amount_captured=forged)]
    chains = [(PAYER, chain_of(PAYER, [("credit", forged)]))]
    fake_stores(monkeypatch, chains, [(PAYER, "USD", forged)], records)
    # When the sweep audits the payer and the payee apart
    found = swept([CARD_HOLDER], [PAYER])
    # Then the payment is named once, as the audit at once names it
    assert [(d.problem, d.payment_id, d.amount) for d in found] == [
        ("captured_above_authorised", f"pay_{1:026d}", forged - 1_000)
    ]


def test_the_sweep_names_an_entry_that_moved_what_its_record_did_not(monkeypatch):
    # Given a logged credit of 700 whose payment captured 500 (the balance says 700 too)
    records = [payment_record(1, CARD_HOLDER, PAYER, 500)]
    chains = [(PAYER, chain_of(PAYER, [("credit", 700)]))]
    fake_stores(monkeypatch, chains, [(PAYER, "USD", 700)], records)
    # Then the entry is unexplained, and nothing else is wrong
    assert [(d.kind, d.problem, d.amount) for d in swept([PAYER])] == [
        ("unexplained_money", "differs_from_record", 700)
    ]


def test_a_payment_committed_between_the_sweeps_visits_of_payer_and_payee_is_no_gap(monkeypatch):
    # Given PAYER holding 1,000 (logged), and the sweep having audited PAYER
    chains = [(PAYER, chain_of(PAYER, [("credit", 1_000)]))]
    balances = [(PAYER, "USD", 1_000)]
    records = [payment_record(1, CARD_HOLDER, PAYER, 1_000)]
    fake_stores(monkeypatch, chains, balances, records)
    before = swept([CARD_HOLDER, PAYER])
    # When PAYER pays PAYEE 300 from the balance, committed but not logged yet
    records.append(payment_record(2, PAYER, PAYEE, 300, source="balance"))
    balances[:] = [(PAYER, "USD", 700), (PAYEE, "USD", 300)]
    # Then the sweep's later visit of PAYEE sees the credit in flight: nothing is wrong
    after = reports.audit_users([PAYEE], lambda _: True)
    assert before == [] and after.discrepancies == []
    assert [(p.user_id, p.amount) for p in after.pending] == [(PAYEE, 300)]


def test_the_sweep_names_a_party_no_user_has(monkeypatch):
    # Given a card payment of 500 to PAYER, logged and credited, from a payer who does not exist
    records = [payment_record(1, CARD_HOLDER, PAYER, 500)]
    chains = [(PAYER, chain_of(PAYER, [("credit", 500)]))]
    fake_stores(monkeypatch, chains, [(PAYER, "USD", 500)], records)
    found = reports.audit_users([PAYER], lambda user: user != CARD_HOLDER).discrepancies
    assert [(d.kind, d.user_id, d.problem) for d in found] == [
        ("unexplained_money", CARD_HOLDER, "unknown_party")
    ]


def test_the_sweep_names_a_second_entry_of_an_outcome_explained_already(monkeypatch):
    # Given a card top-up of 500 to PAYER logged twice (the second entry rehashed and linked,
    # the balance raised to match): what an audit at once names as a conservation gap
    records = [payment_record(1, CARD_HOLDER, PAYER, 500)]
    entries, markers = chain_of(PAYER, [("credit", 500), ("credit", 500)])
    repeated = entries[1][1]
    repeated.update(outcome_id=entries[0][1]["outcome_id"], payment_id=f"pay_{1:026d}")
    del repeated["hash"]
    repeated["hash"] = chain.entry_hash(repeated)
    fake_stores(monkeypatch, [(PAYER, (entries, markers[:1]))], [(PAYER, "USD", 1_000)], records)
    found = {(d.kind, d.problem) for d in swept([PAYER])}
    assert ("unexplained_money", "repeats_outcome") in found
    assert ("chain", "entry 2 was never appended") in found
