"""The per-user hash chain and who an outcome concerns."""

from __future__ import annotations

from typing import Any

import pytest

from cashew.ledger import chain
from cashew.ledger.models import Entry, Outcome
from cashew.ledger.service import affected

PAYER = "usr_01JCQ3F6Z4V8T2K9M1N5P7R3S6"
PAYEE = "usr_01JCQ3H1J3K5M7N9P1Q3R5S7T9"

ENTRY: dict[str, Any] = {
    "id": "txn_01JCQ3J0000000000000000000",
    "payment_id": "pay_01JCQ3J0000000000000000000",
    "user_id": PAYER,
    "type": "payment",
    "direction": "debit",
    "amount": 2500,
    "currency": "USD",
    "status": "succeeded",
    "failure_code": None,
    "occurred_at": "2026-11-30T09:30:00.000Z",
    "seq": 7,
    "prev_hash": "a" * 64,
}


def test_hash_is_a_deterministic_sha256_hex_digest() -> None:
    first = chain.entry_hash(dict(ENTRY))
    assert first == chain.entry_hash(dict(ENTRY))
    assert len(first) == 64 and int(first, 16) >= 0


def test_hash_does_not_depend_on_key_order() -> None:
    reversed_entry = dict(reversed(list(ENTRY.items())))
    assert chain.entry_hash(reversed_entry) == chain.entry_hash(ENTRY)


def test_hash_excludes_the_hash_field_itself() -> None:
    # Given an entry that already carries its hash (as stored)
    expected = chain.entry_hash(ENTRY)
    # When it is hashed again for verification
    # Then the stored hash (whatever it says) does not change the result
    assert chain.entry_hash({**ENTRY, "hash": expected}) == expected
    assert chain.entry_hash({**ENTRY, "hash": "0" * 64}) == expected


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "txn_01JCQ3J0000000000000000001"),
        ("payment_id", "pay_01JCQ3J0000000000000000001"),
        ("user_id", PAYEE),
        ("type", "top_up"),
        ("direction", "credit"),
        ("amount", 2501),
        ("currency", "EUR"),
        ("status", "failed"),
        ("failure_code", "card_declined"),
        ("occurred_at", "2026-11-30T09:30:00.001Z"),
        ("seq", 8),
        ("prev_hash", "b" * 64),
    ],
)
def test_hash_changes_when_any_field_changes(field: str, value: Any) -> None:
    assert ENTRY[field] != value
    assert chain.entry_hash({**ENTRY, field: value}) != chain.entry_hash(ENTRY)


def test_hash_distinguishes_a_missing_field_from_a_null_one() -> None:
    without = {k: v for k, v in ENTRY.items() if k != "failure_code"}
    assert chain.entry_hash(without) != chain.entry_hash(ENTRY)


def test_amount_as_string_hashes_differently_from_amount_as_int() -> None:
    assert chain.entry_hash({**ENTRY, "amount": "2500"}) != chain.entry_hash(ENTRY)


def test_chaining_detects_an_edit_in_an_earlier_entry() -> None:
    # Given a chain of three entries
    entries = []
    prev = chain.GENESIS
    for seq in (1, 2, 3):
        fields = {**ENTRY, "seq": seq, "prev_hash": prev}
        prev = chain.entry_hash(fields)
        entries.append({**fields, "hash": prev})
    # When the first entry's amount is edited and its hash recomputed
    entries[0] = {**entries[0], "amount": 1}
    entries[0]["hash"] = chain.entry_hash(entries[0])
    # Then the second entry no longer links to it
    assert entries[1]["prev_hash"] != entries[0]["hash"]


def test_genesis_is_64_zeros() -> None:
    assert chain.GENESIS == "0" * 64


# --- affected -------------------------------------------------------------------------------


def outcome(type_: str, status: str, **overrides: Any) -> Outcome:
    return Outcome(
        outcome_id="out_1",
        source=overrides.pop("source", "balance"),
        payment_id="pay_01JCQ3J0000000000000000000",
        type=type_,
        status=status,
        amount=2500,
        currency="USD",
        payer_id=PAYER,
        payee_id=overrides.pop("payee_id", PAYEE),
        occurred_at="2026-11-30T09:30:00.000Z",
        **overrides,
    )


@pytest.mark.parametrize("status", ["succeeded", "failed", "processing"])
def test_a_top_up_credits_only_the_payers_balance(status: str) -> None:
    top_up = outcome("top_up", status, payee_id=PAYER, source="card")
    assert affected(top_up) == [(PAYER, "credit", "balance")]


@pytest.mark.parametrize("source", ["balance", "card"])
def test_a_succeeded_payment_debits_the_payers_source_and_credits_the_payees_balance(
    source: str,
) -> None:
    assert affected(outcome("payment", "succeeded", source=source)) == [
        (PAYER, "debit", source),
        (PAYEE, "credit", "balance"),
    ]


@pytest.mark.parametrize("status", ["failed", "requires_capture", "processing", "canceled"])
def test_a_payment_that_did_not_reach_the_payee_concerns_the_payer_only(status: str) -> None:
    declined = outcome("payment", status, failure_code="card_declined", source="card")
    assert affected(declined) == [(PAYER, "debit", "card")]


def test_a_balance_refund_moves_money_between_the_two_balances_at_once() -> None:
    assert affected(outcome("refund", "succeeded", source="balance")) == [
        (PAYEE, "debit", "balance"),
        (PAYER, "credit", "balance"),
    ]


def test_a_card_refund_leaves_the_payees_balance_first_then_reaches_the_card() -> None:
    assert affected(outcome("refund", "pending", source="card")) == [(PAYEE, "debit", "balance")]
    assert affected(outcome("refund", "succeeded", source="card")) == [(PAYER, "credit", "card")]


def test_a_refunded_top_up_leaves_the_balance_for_the_card() -> None:
    pending = outcome("refund", "pending", payee_id=PAYER, source="card")
    settled = outcome("refund", "succeeded", payee_id=PAYER, source="card")
    assert affected(pending) == [(PAYER, "debit", "balance")]
    assert affected(settled) == [(PAYER, "credit", "card")]


@pytest.mark.parametrize("status", ["open", "won", "lost"])
def test_a_dispute_concerns_both_parties_the_way_a_refund_would(status: str) -> None:
    assert affected(outcome("dispute", status, source="card")) == [
        (PAYER, "credit", "card"),
        (PAYEE, "debit", "balance"),
    ]


# --- balance_change ---------------------------------------------------------------------------


def entry(**changes: Any) -> Entry:
    fields = {**ENTRY, "outcome_id": "pay_1:succeeded", "funds": "balance", **changes}
    return Entry(**fields, hash="f" * 64)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({}, -2500),
        ({"direction": "credit"}, 2500),
        ({"funds": "card"}, 0),  # the payer's card paid: the balance never saw it
        ({"status": "failed"}, 0),
        ({"status": "requires_capture"}, 0),
        ({"type": "dispute", "status": "won", "direction": "credit"}, 0),  # its refund moves it
        ({"type": "refund", "direction": "credit"}, 2500),
        ({"type": "refund", "status": "pending"}, -2500),  # a card refund leaves the balance
        ({"type": "refund", "direction": "credit", "funds": "card"}, 0),  # ... for the card
        ({"type": "payment", "status": "pending"}, 0),
        ({"type": "top_up", "direction": "credit"}, 2500),
    ],
)
def test_only_succeeded_entries_of_the_balance_change_it(
    changes: dict[str, Any], expected: int
) -> None:
    assert entry(**changes).balance_change == expected
