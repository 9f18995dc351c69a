"""Chain verification on stored items (cashew.ledger.chain.verify), and the pieces of the
log's filtered, paged reads (cashew.ledger.service)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cashew.errors import InvalidRequestError
from cashew.ledger import chain, service
from cashew.ledger.models import ChainCheck, Entry
from cashew.ledger.store import ChainItem, Marker, StoredEntry

USER = "usr_01JCQ3F6Z4V8T2K9M1N5P7R3S6"
OTHER = "usr_01JCQ3H1J3K5M7N9P1Q3R5S7T9"

Entries = list[tuple[int, dict[str, Any]]]


def check_of(entries: Entries, markers: list[Marker]) -> ChainCheck:
    """The verdict on (position, stored fields) pairs, read as the store reads them."""
    return chain.verify(USER, [ChainItem(seq, fields) for seq, fields in entries], markers)


def build(n: int) -> tuple[Entries, list[Marker]]:
    """A well-formed chain of n entries (position, stored fields) and their append records,
    as the store reads them."""
    entries, markers, prev = [], [], chain.GENESIS
    for seq in range(1, n + 1):
        fields = {
            "id": f"txn_{seq:026d}", "outcome_id": f"pay_{seq:026d}:succeeded",
            "payment_id": f"pay_{seq:026d}", "user_id": USER, "type": "payment",
            "direction": "debit", "funds": "balance", "amount": 100 * seq, "currency": "USD",
            "status": "succeeded", "failure_code": None,
            "occurred_at": f"2026-11-30T09:{seq % 60:02d}:00.000Z", "seq": seq, "prev_hash": prev,
        }  # fmt: skip
        fields["hash"] = prev = chain.entry_hash(fields)
        entries.append((seq, fields))
        markers.append(Marker(USER, fields["outcome_id"], seq, fields["hash"]))
    return entries, markers


def test_a_whole_chain_is_valid_and_names_its_head():
    entries, markers = build(4)
    check = check_of(entries, markers)
    assert check.valid and check.entries == 4 and check.first_bad_seq is None
    assert check.head_hash == entries[-1][1]["hash"]


def test_an_empty_chain_is_valid():
    check = check_of([], [])
    assert (check.valid, check.entries, check.head_hash) == (True, 0, chain.GENESIS)


def _edit(entries: Entries, markers: list[Marker], k: int) -> None:
    entries[k - 1][1]["amount"] += 1


def _edit_and_rehash(entries: Entries, markers: list[Marker], k: int) -> None:
    fields = entries[k - 1][1]
    fields["status"] = "failed"
    fields["hash"] = chain.entry_hash(fields)


def _delete(entries: Entries, markers: list[Marker], k: int) -> None:
    del entries[k - 1]


def _swap(entries: Entries, markers: list[Marker], k: int) -> None:
    """Entries k and k+1 trade places (the last one trades with the one before it)."""
    i = min(k, len(entries) - 1) - 1
    (a, first), (b, second) = entries[i], entries[i + 1]
    entries[i], entries[i + 1] = (a, second), (b, first)


def _relabel(entries: Entries, markers: list[Marker], k: int) -> None:
    """Entry k moved to the end (the one before the last, if k is the last)."""
    _, fields = entries.pop(min(k, len(entries) - 1) - 1)
    entries.append((len(entries) + 1, fields))


def _foreign(entries: Entries, markers: list[Marker], k: int) -> None:
    fields = entries[k - 1][1]
    fields["user_id"] = OTHER
    fields["hash"] = chain.entry_hash(fields)


def _forged_head(entries: Entries, markers: list[Marker], k: int) -> None:
    """A well-linked entry added at the head, with no append record."""
    n = len(entries)
    fields = {**entries[-1][1], "id": "txn_forged", "outcome_id": "pay_forged:succeeded"}
    fields.update(seq=n + 1, prev_hash=entries[-1][1]["hash"])
    fields["hash"] = chain.entry_hash(fields)
    entries.append((n + 1, fields))


def _repeated_head(entries: Entries, markers: list[Marker], k: int) -> None:
    """A well-linked entry added at the head, repeating entry k's outcome (whose append
    record names entry k, not it): the outcome's money counted twice."""
    n = len(entries)
    fields = {**entries[k - 1][1], "id": "txn_repeated"}
    fields.update(seq=n + 1, prev_hash=entries[-1][1]["hash"])
    fields["hash"] = chain.entry_hash(fields)
    entries.append((n + 1, fields))


TAMPERING = {
    "edit": (_edit, lambda k, n: k),
    "edit_and_rehash": (_edit_and_rehash, lambda k, n: k),
    "delete": (_delete, lambda k, n: k),
    "swap": (_swap, lambda k, n: min(k, n - 1)),
    "relabel": (_relabel, lambda k, n: min(k, n - 1)),
    "foreign": (_foreign, lambda k, n: k),
    "forged_head": (_forged_head, lambda k, n: n + 1),
    "repeated_head": (_repeated_head, lambda k, n: n + 1),
}


@given(
    n=st.integers(2, 12),
    position=st.integers(1, 12),
    how=st.sampled_from(sorted(TAMPERING)),
)
def test_any_tampering_is_found_at_its_first_seq(n: int, position: int, how: str) -> None:
    # Given a chain of n entries, tampered with once at position k
    k = min(position, n)
    entries, markers = build(n)
    tamper, first_bad = TAMPERING[how]
    tamper(entries, markers, k)
    # When it is verified
    check = check_of(entries, markers)
    # Then it is invalid, and the first bad seq is where the tampering begins
    assert not check.valid
    assert check.first_bad_seq == first_bad(k, n), check.problem


def test_a_truncated_chain_is_found_by_its_append_records():
    entries, markers = build(5)
    del entries[3:]  # the two newest entries are gone; the chain itself still links
    check = check_of(entries, markers)
    assert (check.valid, check.first_bad_seq) == (False, 4)
    assert check.problem == "entry 4 is missing"


def test_a_stored_item_that_is_no_entry_at_all_is_reported_not_raised():
    entries, markers = build(3)
    entries[1] = (2, {"garbage": True})
    check = check_of(entries, markers)
    assert (check.valid, check.first_bad_seq) == (False, 2)


# --------------------------------------------------------------------------- filters


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_filters_keep_by_type_status_and_inclusive_time_bounds():
    filters = service.Filters(
        type="payment", since=at("2026-11-02T00:00:00+00:00"), until=at("2026-11-03T00:00:00+00:00")
    )
    _, fields = build(1)[0][0]
    item = {
        **fields,
        "type": "payment",
        "status": "failed",
        "occurred_at": "2026-11-02T00:00:00.000Z",
    }

    def entry(**changes: Any) -> Entry:
        return Entry.model_validate({**item, **changes})

    assert filters.keeps(entry())
    assert filters.keeps(entry(occurred_at="2026-11-03T00:00:00.000Z"))
    assert not filters.keeps(entry(occurred_at="2026-11-03T00:00:00.001Z"))
    assert not filters.keeps(entry(occurred_at="2026-11-01T23:59:59.999Z"))
    assert not filters.keeps(entry(type="refund"))
    assert service.Filters(status="failed").keeps(entry())
    assert not service.Filters(status="succeeded").keeps(entry())


def test_filter_bounds_in_other_zones_compare_in_utc():
    filters = service.Filters(since=at("2026-11-02T01:00:00+02:00"))
    assert filters.bounds[0] == "2026-11-01T23:00:00.000Z"


def test_from_after_to_is_refused():
    with pytest.raises(InvalidRequestError) as raised:
        service.Filters(
            since=at("2026-11-03T00:00:00+00:00"), until=at("2026-11-02T00:00:00+00:00")
        )
    assert raised.value.errors == [{"field": "from", "message": "is after to"}]


def test_ranges_default_to_30_days_and_stop_at_366():
    until = at("2026-11-30T12:00:00+00:00")
    assert service.date_range(None, until) == (until - timedelta(days=30), until)
    service.date_range(until - timedelta(days=366), until)
    with pytest.raises(InvalidRequestError):
        service.date_range(until - timedelta(days=366, seconds=1), until)


def test_days_run_newest_first_in_utc():
    since = datetime(2026, 11, 29, 23, 30, tzinfo=UTC)
    until = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)
    assert service.days(since, until) == ["2026-12-01", "2026-11-30", "2026-11-29"]
    late = at("2026-12-01T01:00:00+02:00")  # still 30 November in UTC
    assert service.days(late, late) == ["2026-11-30"]


# ------------------------------------------------------------------------------ pages


def stored(n: int) -> list[StoredEntry]:
    entries, _ = build(n)
    return [
        StoredEntry.from_item(
            {**fields, "pk": f"USER#{USER}", "sk": f"SEQ#{seq:012d}", "day": "2026-11-30"}
        )
        for seq, fields in reversed(entries)
    ]


def test_a_page_stops_at_limit_and_its_cursor_is_its_last_entry():
    items = stored(5)
    asked: list[int] = []

    def read(wanted):
        asked.append(wanted())
        return iter(items)

    page, cursor = service.page(read, lambda _: True, 2, ("pk", "sk"), filtered=False)
    assert [e.seq for e in page] == [5, 4]
    assert cursor is not None
    assert asked == [3]  # the page, and one more to know whether more follow
    last = service.page(lambda _: iter(items[:2]), lambda _: True, 2, ("pk", "sk"), filtered=False)
    assert last[1] is None


def test_a_filtered_page_gives_up_after_max_examined(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(service, "MAX_EXAMINED", 3)
    seen: list[int] = []

    def lazily():
        for item in stored(10):
            seen.append(item.entry.seq)
            yield item

    page, cursor = service.page(
        lambda _: lazily(), lambda e: e.seq == 1, 5, ("pk", "sk"), filtered=True
    )
    assert page == [] and cursor is not None and seen == [10, 9, 8]


def test_an_entry_the_store_could_not_read_is_named_not_raised():
    entries, markers = build(3)
    items = [ChainItem(seq, fields) for seq, fields in entries]
    items[1] = ChainItem(2, {}, unreadable="ValueError")
    check = chain.verify(USER, items, markers)
    assert (check.valid, check.first_bad_seq) == (False, 2)
    assert check.problem is not None and "cannot be read" in check.problem


def test_a_value_json_cannot_hold_is_an_alteration():
    entries, markers = build(2)
    entries[0][1]["tags"] = {"x"}  # a string set, as DynamoDB can store
    check = check_of(entries, markers)
    assert (check.valid, check.first_bad_seq, check.problem) == (False, 1, "entry 1 was altered")
