"""The summary's running totals (cashew.ledger.totals): what one outcome adds, how a range
splits into whole days read from the totals and edges read from the log, and from which day
the totals hold."""

from __future__ import annotations

import re
from typing import Any

import pytest

from cashew import reports
from cashew.ledger import chain, totals
from cashew.ledger.models import Entry

DAY_END = "T23:59:59.999Z"
ID = "01JCQ3F6Z4V8T2K9M1N5P7R3S6"


def entry(**fields: Any) -> Entry:
    base = {
        "id": f"txn_{ID}", "outcome_id": f"pay_{ID}:failed", "payment_id": f"pay_{ID}",
        "user_id": f"usr_{ID}",
        "type": "payment", "direction": "debit", "funds": "card", "amount": 700,
        "currency": "USD", "status": "failed", "failure_code": "fraud_suspected",
        "occurred_at": "2026-11-10T09:00:00.000Z", "seq": 1, "prev_hash": chain.GENESIS,
        "hash": "h",
    }  # fmt: skip
    return Entry(**{**base, **fields})


def test_one_outcome_adds_one_to_its_group_and_its_fraud_declines():
    write = totals.count(entry())
    update = write["Update"]
    # its day's shard is a partition of its own (each takes ~1/64 of a day's writes)
    assert re.fullmatch(r"DAY#2026-11-10#\d\d", update["Key"]["pk"]["S"])
    assert update["Key"]["sk"] == {"S": "TOTALS"}
    assert (
        update["UpdateExpression"]
        == "ADD outcomes :one, #n :one, #a :amount, #fn :one, #fa :amount"
    )
    assert update["ExpressionAttributeNames"] == {
        "#n": "n|USD|payment|failed", "#a": "a|USD|payment|failed",
        "#fn": "fn|USD", "#fa": "fa|USD",
    }  # fmt: skip
    assert update["ExpressionAttributeValues"] == {":one": {"N": "1"}, ":amount": {"N": "700"}}
    assert "ConditionExpression" not in update  # it only ever adds


def test_an_outcome_without_fraud_adds_no_fraud_decline():
    names = totals.count(entry(failure_code=None, status="succeeded"))["Update"]
    assert set(names["ExpressionAttributeNames"]) == {"#n", "#a"}


def test_an_outcome_is_in_one_shard_of_its_day_whichever_entry_counts_it():
    a = totals.count(entry())["Update"]["Key"]
    b = totals.count(entry(user_id="usr_01JCQ3H1J3K5M7N9P1Q3R5S7T9"))["Update"]["Key"]
    assert a == b


def test_the_totals_of_stored_items_add_up():
    sums = totals.Totals()
    sums.add_item({"pk": "DAY#2026-11-10", "sk": "SHARD#01", "outcomes": 3,
                   "n|USD|payment|failed": 2, "a|USD|payment|failed": 900,
                   "n|EUR|top_up|succeeded": 1, "a|EUR|top_up|succeeded": 50,
                   "fn|USD": 1, "fa|USD": 700})  # fmt: skip
    sums.add("USD", "payment", "failed", 100, None)
    assert sums.outcomes == 4
    assert sums.counts == {("USD", "payment", "failed"): 3, ("EUR", "top_up", "succeeded"): 1}
    assert sums.amounts[("USD", "payment", "failed")] == 1_000
    assert sums.fraud == {("USD", "n"): 1, ("USD", "a"): 700}


@pytest.mark.parametrize(
    ("since", "until", "counted_from", "whole", "rest"),
    [
        # whole days in the middle, partial days at both ends from the log
        ("2026-11-10T09:30:00.000Z", "2026-11-13T01:00:00.000Z", totals.ALL_DAYS,
         ["2026-11-11", "2026-11-12"],
         [("2026-11-10T09:30:00.000Z", "2026-11-10" + DAY_END),
          ("2026-11-13T00:00:00.000Z", "2026-11-13T01:00:00.000Z")]),
        # a range of whole days reads nothing from the log
        ("2026-11-10T00:00:00.000Z", "2026-11-11" + DAY_END, totals.ALL_DAYS,
         ["2026-11-10", "2026-11-11"], []),
        # days before the totals began are read from the log
        ("2026-11-10T00:00:00.000Z", "2026-11-12" + DAY_END, "2026-11-12",
         ["2026-11-12"], [("2026-11-10T00:00:00.000Z", "2026-11-11" + DAY_END)]),
        # no totals yet, or no whole day: all from the log
        ("2026-11-10T00:00:00.000Z", "2026-11-12" + DAY_END, None,
         [], [("2026-11-10T00:00:00.000Z", "2026-11-12" + DAY_END)]),
        ("2026-11-10T00:00:00.000Z", "2026-11-10T23:59:59.998Z", totals.ALL_DAYS,
         [], [("2026-11-10T00:00:00.000Z", "2026-11-10T23:59:59.998Z")]),
    ],
)  # fmt: skip
def test_a_range_splits_into_whole_counted_days_and_edges(since, until, counted_from, whole, rest):
    assert reports._split(since, until, counted_from) == (whole, rest)


class FakeTable:
    def __init__(self, log_has_entries: bool) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.has_entries = log_has_entries

    def get(self, table: str, key: dict[str, Any], **_: Any) -> dict[str, Any] | None:
        return self.items.get((key["pk"], key["sk"]))

    def put(self, table: str, item: dict[str, Any], condition: str | None = None) -> None:
        key = (item["pk"], item["sk"])
        if key in self.items:
            raise totals.dynamo.ConditionFailed(table)
        self.items[key] = item


@pytest.mark.parametrize(("has_entries", "expected"), [(False, totals.ALL_DAYS), (True, "next")])
def test_the_first_writer_says_from_which_day_the_totals_hold(monkeypatch, has_entries, expected):
    table = FakeTable(has_entries)
    monkeypatch.setattr(totals.dynamo, "get_item", table.get)
    monkeypatch.setattr(totals.dynamo, "put_item", table.put)
    monkeypatch.setattr(totals, "_log_has_entries", lambda: table.has_entries)
    monkeypatch.setattr(totals, "_STARTED", set())
    frozen = totals.clock.now()
    monkeypatch.setattr(totals.clock, "now", lambda: frozen)
    totals.start()
    day = table.items[("TOTALS", "FROM")]["day"]
    if expected == "next":  # a log with entries before counting began: from tomorrow
        assert day > frozen.date().isoformat()
    else:
        assert day == expected
    # a FROM written first stands, and the process asks once
    table.items[("TOTALS", "FROM")]["day"] = "2030-01-01"
    monkeypatch.setattr(totals, "_STARTED", set())
    totals.start()
    assert totals.first_counted_day() == "2030-01-01"
