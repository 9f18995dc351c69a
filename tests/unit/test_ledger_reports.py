"""The admin reports on in-memory fakes of the stores (cashew.reports): the summary
counts outcomes once, the CSV page is what the contract lists, the audit names what is off."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from cashew import reports
from cashew.accounts.store import StoredBalance
from cashew.ledger import chain, service
from cashew.ledger.store import ChainItem, Marker, StoredEntry
from cashew.payments import store as payments_store
from cashew.payouts.store import StoredPayout

PAYER = "usr_01JCQ3F6Z4V8T2K9M1N5P7R3S6"
PAYEE = "usr_01JCQ3H1J3K5M7N9P1Q3R5S7T9"
RANGE = service.Filters(
    since=datetime(2026, 11, 1, tzinfo=UTC), until=datetime(2026, 11, 30, tzinfo=UTC)
)


def item(n: int, user: str, **fields: Any) -> dict[str, Any]:
    base = {
        "id": f"txn_{n:026d}", "outcome_id": f"pay_{n:026d}:succeeded",
        "payment_id": f"pay_{n:026d}", "user_id": user, "type": "payment",
        "direction": "debit", "funds": "balance", "amount": 100, "currency": "USD",
        "status": "succeeded", "failure_code": None,
        "occurred_at": f"2026-11-{10 + n % 10:02d}T09:00:00.000Z", "seq": 1,
        "prev_hash": chain.GENESIS, "hash": "h",
        "pk": f"USER#{user}", "sk": "SEQ#000000000001", "day": f"2026-11-{10 + n % 10:02d}",
    }  # fmt: skip
    return {**base, **fields}


@pytest.fixture
def everyone(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What the day index holds: the items `everyone_items` yields, newest first."""
    items: list[dict[str, Any]] = []

    def read(filters: service.Filters, cursor: str | None, wanted: Any) -> Iterator[StoredEntry]:
        return iter([StoredEntry.from_item(i) for i in items])

    monkeypatch.setattr(service, "everyone_items", read)
    monkeypatch.setattr(reports.disputes, "count", lambda status, since, until: 2)
    monkeypatch.setattr(reports.ledger, "first_counted_day", lambda: None)  # no totals yet
    return items


def test_the_summary_counts_each_outcome_once_by_currency_type_and_status(everyone):
    # Given a payment (an entry for each party), a fraud decline, a EUR top-up and a refund
    everyone += [
        item(1, PAYER), item(1, PAYEE, direction="credit"),
        item(2, PAYER, status="failed", failure_code="fraud_suspected", amount=700),
        item(3, PAYER, type="top_up", currency="EUR", amount=50, direction="credit"),
        item(4, PAYEE, type="refund", outcome_id="re_1:succeeded", amount=40),
        item(4, PAYER, type="refund", outcome_id="re_1:succeeded", amount=40, direction="credit"),
    ]  # fmt: skip
    summary = reports.summary(RANGE)
    assert summary.outcomes == 4
    assert [(g.currency, g.type, g.status, g.count, g.amount) for g in summary.groups] == [
        ("EUR", "top_up", "succeeded", 1, 50),
        ("USD", "payment", "failed", 1, 700),
        ("USD", "payment", "succeeded", 1, 100),
        ("USD", "refund", "succeeded", 1, 40),
    ]
    assert [(f.currency, f.count, f.amount) for f in summary.fraud_declines] == [("USD", 1, 700)]
    assert summary.open_disputes == 2
    assert (summary.since, summary.until) == (
        "2026-11-01T00:00:00.000Z",
        "2026-11-30T00:00:00.000Z",
    )


def test_a_csv_page_has_the_contracts_columns_and_a_cursor_while_more_follow(everyone):
    everyone += [item(n, PAYER, amount=n) for n in range(1, 4)]
    body, cursor = reports.csv_page(RANGE, 2, None)
    rows = list(csv.reader(io.StringIO(body)))
    assert rows[0] == list(reports.CSV_COLUMNS)
    assert [(r[0], r[6]) for r in rows[1:]] == [(f"txn_{1:026d}", "1"), (f"txn_{2:026d}", "2")]
    assert body.endswith("\r\n") and cursor is not None
    body, cursor = reports.csv_page(RANGE, 5, None)
    assert len(list(csv.reader(io.StringIO(body)))) == 4 and cursor is None


def chain_of(user: str, amounts: list[tuple[str, int]], first: int = 1) -> tuple[list, list]:
    """A well-formed chain of balance entries (direction, amount) and its append records;
    the n-th entry is about payment `first + n - 1`."""
    entries, markers, prev = [], [], chain.GENESIS
    for seq, (direction, amount) in enumerate(amounts, 1):
        stored = item(
            first + seq - 1, user, direction=direction, amount=amount, seq=seq, prev_hash=prev
        )
        fields = {k: v for k, v in stored.items() if k not in ("pk", "sk", "day", "hash")}
        fields["hash"] = prev = chain.entry_hash(fields)
        entries.append((seq, fields))
        markers.append(Marker(user, fields["outcome_id"], seq, fields["hash"]))
    return entries, markers


CARD_HOLDER = "usr_01JCQ3K0000000000000000000"


def payment_record(
    n: int, payer: str, payee: str, amount: int, source: str = "card", **fields: Any
) -> dict[str, Any]:
    """A payments-table item: payment n, succeeded and captured in full unless told."""
    base = {
        "pk": f"pay_{n:026d}", "id": f"pay_{n:026d}", "type": "payment", "status": "succeeded",
        "amount": amount, "currency": "USD", "payer_id": payer, "payee_id": payee,
        "source": {"type": source}, "amount_captured": amount, "amount_refunded": 0,
        "failure_code": None, "failure_message": None, "risk": {"score": 0, "level": "normal"},
        "description": None, "created_at": "2026-11-10T09:00:00.000Z",
        "updated_at": "2026-11-10T09:00:00.000Z", "charge_id": "ch_1", "fired_rules": [],
    }  # fmt: skip
    return {**base, **fields}


RECORDS_TIME = datetime(2026, 11, 10, 10, 0, tzinfo=UTC)
"""An hour after the records' time: what they hold not yet logged is in flight, not lost."""


def fake_stores(
    monkeypatch: pytest.MonkeyPatch,
    chains: list[tuple[str, tuple[list, list]]],
    balances: list[tuple[str, str, int]],
    records: list[dict[str, Any]],
    now: datetime = RECORDS_TIME,
) -> None:
    """The audit's readers over these lists (read when called, so a test can change them
    between reads): the whole-table reads and the re-check's narrow ones."""

    def concerns(user: str, record: dict[str, Any]) -> bool:
        parties = ("payer_id", "payee_id", "payment_payer_id", "payment_payee_id")
        return user in (record.get(p) for p in parties)

    def read(entries: list, markers: list) -> tuple[list[ChainItem], list[Marker]]:
        """A chain of (position, stored fields) pairs as the store reads it."""
        return [ChainItem(seq, fields) for seq, fields in entries], markers

    monkeypatch.setattr(
        reports.ledger, "all_chains", lambda: iter([(u, *read(*c)) for u, c in chains])
    )
    monkeypatch.setattr(
        reports.ledger, "chain_items", lambda u: read(*dict(chains).get(u, ([], [])))
    )
    monkeypatch.setattr(
        reports.accounts, "all_balances", lambda: iter([StoredBalance(*b) for b in balances])
    )
    monkeypatch.setattr(
        reports.accounts, "balances_of",
        lambda u: iter([StoredBalance(*b) for b in balances if b[0] == u]),
    )  # fmt: skip

    def payout(record: dict[str, Any]) -> bool:
        return str(record["pk"]).startswith("po_")

    monkeypatch.setattr(
        reports.payments,
        "all_records",
        lambda: iter([payments_store.record(r) for r in records if not payout(r)]),
    )
    monkeypatch.setattr(
        reports.payments,
        "records_of",
        lambda u: [payments_store.record(r) for r in records if concerns(u, r) and not payout(r)],
    )
    monkeypatch.setattr(  # payouts are items of the payments table too, read by their store
        reports.payouts,
        "all_payouts",
        lambda: iter([StoredPayout.from_item(r) for r in records if payout(r)]),
    )
    monkeypatch.setattr(
        reports.payouts,
        "payouts_of",
        lambda u: [
            StoredPayout.from_item(r) for r in records if payout(r) and r["payout_user_id"] == u
        ],
    )
    monkeypatch.setattr(  # a consistent read by key (the sweep's re-check)
        reports.payments,
        "read",
        lambda pk: next(
            (payments_store.record(r) for r in records if r["pk"] == pk and not payout(r)), None
        ),
    )
    monkeypatch.setattr(reports.clock, "now", lambda: now)
    monkeypatch.setattr(reports, "RECHECK_PAUSE", 0, raising=False)


def test_the_audit_reconciles_each_balance_and_verifies_each_chain(monkeypatch):
    payer_chain = chain_of(PAYER, [("credit", 1_000), ("debit", 300)])
    payee_chain = chain_of(PAYEE, [("credit", 300)], first=2)
    records = [
        payment_record(1, CARD_HOLDER, PAYER, 1_000),  # the card paid PAYER 1,000
        payment_record(2, PAYER, PAYEE, 300, source="balance"),
    ]
    payee_chain[0][0][1]["amount"] = 299  # tampered with, without fixing the hash
    balances = [(PAYER, "USD", 700), (PAYEE, "USD", 300), (PAYEE, "EUR", 5)]
    fake_stores(monkeypatch, [(PAYER, payer_chain), (PAYEE, payee_chain)], balances, records)
    audit = reports.audit()
    assert (audit.chains, audit.entries) == (2, 3)
    assert not audit.chains_valid and not audit.balances_match
    found = {(d.kind, d.user_id, d.currency): d for d in audit.discrepancies}
    assert set(found) == {
        ("chain", PAYEE, None),
        ("balance", PAYEE, "USD"),
        ("balance", PAYEE, "EUR"),
        # the tampered entry also credits an amount its payment does not explain
        ("unexplained_money", PAYEE, "USD"),
        # and no card money explains the EUR balance
        ("conservation", None, "EUR"),
    }
    assert found["unexplained_money", PAYEE, "USD"].problem == "amount_differs"
    assert found["chain", PAYEE, None].first_bad_seq == 1
    assert (found["balance", PAYEE, "EUR"].balance, found["balance", PAYEE, "EUR"].log_balance) == (
        5,
        0,
    )


def test_a_clean_log_audits_clean(monkeypatch):
    records = [payment_record(1, CARD_HOLDER, PAYER, 10)]
    chains = [(PAYER, chain_of(PAYER, [("credit", 10)]))]
    fake_stores(monkeypatch, chains, [(PAYER, "USD", 10)], records)

    def no_second_read(*_: Any) -> None:
        raise AssertionError("a clean audit reads nothing again")

    monkeypatch.setattr(reports.accounts, "balances_of", no_second_read)
    monkeypatch.setattr(reports.payments, "records_of", no_second_read)
    monkeypatch.setattr(reports.ledger, "chain_items", no_second_read)
    audit = reports.audit()
    assert audit.chains_valid and audit.balances_match and audit.discrepancies == []
    assert audit.card_money_explained and audit.pending == []
