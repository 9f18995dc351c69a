"""The stored records of the transaction log and disputes tables: each converts to its item
and back unchanged, and reads the items the stores wrote before records existed as they
were read then."""

from __future__ import annotations

from typing import Any, get_args

from hypothesis import given
from hypothesis import strategies as st

from cashew.disputes.models import AdminDispute, Dispute, DisputeReason, DisputeStatus
from cashew.disputes.store import OpenLock, StoredDispute
from cashew.ledger import chain
from cashew.ledger.models import Direction, Entry, EntryStatus, EntryType, Funds
from cashew.ledger.store import ChainItem, Marker, StoredEntry

USER = "usr_01JCQ3F6Z4V8T2K9M1N5P7R3S6"
PAYEE = "usr_01JCQ3H1J3K5M7N9P1Q3R5S7T9"
text = st.text(min_size=1, max_size=30)
times = st.datetimes().map(
    lambda t: t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
)
optional = st.none() | text


def literal(kind: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from(get_args(kind))


entries = st.builds(
    Entry,
    id=text, outcome_id=text, payment_id=text, user_id=text, type=literal(EntryType),
    direction=literal(Direction), funds=literal(Funds), amount=st.integers(),
    currency=text, status=literal(EntryStatus), failure_code=optional, occurred_at=times,
    seq=st.integers(0, 10**12 - 1), prev_hash=text, hash=text,
)  # fmt: skip


@given(entries)
def test_an_entry_converts_to_its_item_and_back(entry: Entry) -> None:
    stored = StoredEntry(entry)
    assert StoredEntry.from_item(stored.to_item()) == stored


def entry_of(seq: int = 3, failure_code: str | None = None) -> Entry:
    fields = {
        "id": "txn_01JCQ3J2K4M6N8P0Q2R4S6T8V1",
        "outcome_id": "pay_01JCQ3J2K4M6N8P0Q2R4S6T8V0:failed",
        "payment_id": "pay_01JCQ3J2K4M6N8P0Q2R4S6T8V0", "user_id": USER, "type": "payment",
        "direction": "debit", "funds": "card", "amount": 600, "currency": "USD",
        "status": "failed", "failure_code": failure_code,
        "occurred_at": "2026-11-30T09:30:00.000Z", "seq": seq, "prev_hash": chain.GENESIS,
    }  # fmt: skip
    return Entry(**fields, hash=chain.entry_hash(fields))


def test_an_entry_item_is_what_the_store_wrote_and_read_before_records():
    for entry in (entry_of(), entry_of(12, "fraud_suspected")):
        # as the store wrote an entry, and read it back (its fields, less pk, sk and day)
        before = {
            "pk": f"USER#{entry.user_id}", "sk": f"SEQ#{entry.seq:012d}",
            "day": entry.occurred_at[:10], **entry.model_dump(mode="json"),
        }  # fmt: skip
        read_before = Entry.model_validate(
            {k: v for k, v in before.items() if k not in ("pk", "sk", "day")}
        )
        assert StoredEntry(entry).to_item() == before
        assert StoredEntry.from_item(before).entry == read_before == entry
        assert StoredEntry(entry).key() == {
            "pk": before["pk"], "sk": before["sk"], "day": before["day"],
            "occurred_at": before["occurred_at"],
        }  # fmt: skip


def test_an_entry_item_with_a_field_missing_or_wrong_is_a_validation_error():
    item = StoredEntry(entry_of()).to_item()
    for broken in ({**item, "amount": "a lot"}, {k: v for k, v in item.items() if k != "seq"}):
        try:
            StoredEntry.from_item(broken)
        except ValueError:  # pydantic's ValidationError, as Entry.model_validate raised
            continue
        raise AssertionError(f"read {broken}")


@given(text, text, st.integers() | st.none() | text, text | st.none())
def test_an_append_record_converts_to_its_item_and_back(
    user_id: str, outcome_id: str, seq: object, hash: object
) -> None:
    marker = Marker(user_id, outcome_id, seq, hash)
    assert Marker.from_item(marker.to_item()) == marker


def test_an_append_record_is_what_the_store_wrote_and_read_before_records():
    entry = entry_of()
    before = {
        "pk": f"USER#{USER}",
        "sk": f"OUTCOME#{entry.outcome_id}",
        "seq": 3,
        "hash": entry.hash,
    }
    assert Marker(USER, entry.outcome_id, 3, entry.hash).to_item() == before
    read = Marker.from_item(before)
    # before: Marker(outcome id from the sk, seq, hash), of the user its pk names
    assert (read.user_id, read.outcome_id, read.seq, read.hash) == (
        USER, entry.outcome_id, 3, entry.hash,
    )  # fmt: skip
    edited = Marker.from_item({"pk": f"USER#{USER}", "sk": "OUTCOME#x", "seq": "3"})
    assert (edited.seq, edited.hash) == ("3", None)  # as stored, for verification to judge


def test_a_chain_item_holds_the_stored_fields_as_they_are():
    item = {**StoredEntry(entry_of()).to_item(), "tags": {"x"}}  # an attribute added by hand
    read = ChainItem.from_item(item)
    assert read.position == 3 and read.unreadable is None
    assert read.fields == {k: v for k, v in item.items() if k not in ("pk", "sk", "day")}
    assert read.entry() == entry_of()
    assert ChainItem.from_item({**item, "amount": 1.5}).entry() is None  # no Entry: None
    assert ChainItem(3, {}, unreadable="ValueError: 10.5").entry() is None


# --------------------------------------------------------------------------- disputes


def dispute_of(status: str = "open", **changes: Any) -> AdminDispute:
    fields = {
        "id": "dsp_01JCQ3K2K4M6N8P0Q2R4S6T8V2", "transaction_id": "txn_01JCQ3J2K4M6N8P0Q2R4S6T8V1",
        "payment_id": "pay_01JCQ3J2K4M6N8P0Q2R4S6T8V0", "payer_id": USER, "payee_id": PAYEE,
        "status": status, "reason": "duplicate", "details": None, "amount": 600,
        "currency": "USD", "created_at": "2026-11-30T09:30:00.000Z", **changes,
    }  # fmt: skip
    return AdminDispute.model_validate(fields)


resolutions = st.fixed_dictionaries({
    "refund_id": optional, "resolved_at": st.none() | times, "resolved_by": optional,
    "note": optional,
})  # fmt: skip
disputes = st.builds(
    lambda status, reason, details, amount, resolution, source, updated, pending: StoredDispute(
        dispute_of(
            status, reason=reason, details=details, amount=amount,
            **(resolution if status != "open" else {}),
        ),
        source=source, updated_at=updated,
        pending_outcome=pending[0] if status == "open" and pending else None,
        pending_attempt=pending[1] if status == "open" and pending else None,
    ),
    literal(DisputeStatus), literal(DisputeReason), optional, st.integers(), resolutions,
    literal(Funds), times, st.none() | st.tuples(st.sampled_from(["won", "lost"]), text),
)  # fmt: skip


@given(disputes)
def test_a_dispute_converts_to_its_item_and_back(stored: StoredDispute) -> None:
    assert StoredDispute.from_item(stored.to_item()) == stored


def test_a_dispute_item_is_what_the_store_wrote_and_read_before_records():
    # Given a dispute item as the service and store wrote it when it opened
    opened = {
        "id": "dsp_01JCQ3K2K4M6N8P0Q2R4S6T8V2", "transaction_id": "txn_01JCQ3J2K4M6N8P0Q2R4S6T8V1",
        "payment_id": "pay_01JCQ3J2K4M6N8P0Q2R4S6T8V0", "payer_id": USER, "payee_id": PAYEE,
        "status": "open", "reason": "duplicate", "details": None, "amount": 600,
        "currency": "USD", "source": "card", "created_at": "2026-11-30T09:30:00.000Z",
        "updated_at": "2026-11-30T09:30:00.000Z",
    }  # fmt: skip
    item = {"pk": opened["id"], "kind": "dispute", **opened}
    record = StoredDispute(dispute_of(), source="card", updated_at=opened["updated_at"])
    assert record.to_item() == item
    read = StoredDispute.from_item(item)
    assert read == record
    assert read.dispute == AdminDispute.model_validate(item)  # as the service read it
    assert read.public == Dispute.model_validate(item)
    assert (read.source, read.updated_at, read.pending_outcome) == (
        "card",
        opened["updated_at"],
        None,
    )
    # ... claimed by a won resolution, then resolved as the store's update left it
    claimed = {**item, "pending_outcome": "won", "pending_attempt": "a1"}
    read = StoredDispute.from_item(claimed)
    assert (read.pending_outcome, read.pending_attempt, read.to_item()) == ("won", "a1", claimed)
    changes = {
        "refund_id": "re_01JCQ3K2K4M6N8P0Q2R4S6T8V9", "resolved_at": "2026-11-30T10:00:00.000Z",
        "resolved_by": "usr_01JCQ3A0B1C2D3E4F5G6H7J8K9", "note": None,
        "updated_at": "2026-11-30T10:00:00.000Z",
    }  # fmt: skip
    resolved = {**item, **changes, "status": "won"}
    read = StoredDispute.from_item(resolved)
    assert read.dispute == AdminDispute.model_validate(resolved)
    assert read.pending_outcome is None and read.to_item() == resolved


def test_a_dispute_item_that_is_none_raises_as_the_publisher_catches():
    item = StoredDispute(
        dispute_of(), source="card", updated_at="2026-11-30T09:30:00.000Z"
    ).to_item()
    for broken in (
        {k: v for k, v in item.items() if k != "source"},
        {**item, "source": "cash"},
        {**item, "status": "closed"},
        {**item, "pending_outcome": "maybe"},
    ):
        try:
            StoredDispute.from_item(broken)
        except (KeyError, ValueError, TypeError):
            continue
        raise AssertionError(f"read {broken}")


@given(text, text)
def test_an_open_dispute_lock_converts_to_its_item_and_back(payment_id: str, dispute_id: str):
    lock = OpenLock(payment_id, dispute_id)
    assert OpenLock.from_item(lock.to_item()) == lock
    assert lock.to_item() == {"pk": f"OPEN#{payment_id}", "dispute_id": dispute_id}
