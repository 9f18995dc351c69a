"""The admin side of the log: everyone's entries, the summary and CSV export of a date range,
the audit, and 403 for everyone else on every admin path (PROPERTIES 27)."""

from __future__ import annotations

import csv
import io
import itertools
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from cashew import aws, dynamo, reports
from cashew.config import get_settings
from local.cfn import load_template
from local.events import api_event
from tests.integration.conftest import add_card, pay, top_up
from tests.integration.test_disputes import open_dispute, paid_entry
from tests.integration.test_log_reads import as_user, deliver, log_copy, new_id
from tests.support.lambda_runtime import reply

_DAYS = itertools.count()  # the session's endpoint is new: each test's day is unused
ADMIN = as_user("usr_01JCQ3A0B1C2D3E4F5G6H7J8K9", "admin")


def admin_functions() -> list[tuple[str, str]]:
    """(function id, events/ sample) of every function behind a /v1/admin path."""
    found = []
    for function_id, resource in load_template()["Resources"].items():
        for event in (resource.get("Properties", {}).get("Events") or {}).values():
            properties = event["Properties"] if event["Type"] == "Api" else {}
            # OPTIONS is the browser's CORS preflight (no authorizer, no data): not an admin path
            if (
                properties.get("Path", "").startswith("/v1/admin/")
                and properties["Method"] != "OPTIONS"
            ):
                module = Path(resource["Properties"]["CodeUri"]).name
                handler = resource["Properties"]["Handler"].split(".")[0]
                found.append((function_id, f"{module}/{handler}.json"))
    return found


def test_the_admin_paths_are_all_covered_here():
    # 6 of the log, disputes and reports; 8 of webhooks; 2 of the jobs
    assert len(admin_functions()) == 16


@pytest.mark.parametrize(("function_id", "sample"), admin_functions())
@pytest.mark.parametrize("valid", [True, False], ids=["valid-request", "invalid-request"])
def test_a_user_who_is_not_an_admin_gets_403_on_every_admin_path(stack, function_id, sample, valid):
    # Given a user's request, as it is or with a bad parameter and body (the 403 comes first:
    # nothing about an admin route's parameters leaks)
    variations: dict[str, Any] = {} if valid else {"query": {"limit": "0"}, "raw_body": "{"}
    event = api_event(sample, authorizer=as_user(new_id("usr")), **variations)
    answer = reply(stack.invoke(function_id, event))
    assert (answer.status, answer.body["code"]) == (403, "forbidden"), answer.body
    assert answer.headers["Content-Type"] == "application/problem+json"


@pytest.fixture
def day() -> str:
    """A day of its own in the past, so that the range holds only this test's entries."""
    return (date(2001, 1, 1) + timedelta(days=next(_DAYS))).isoformat()


@pytest.fixture
def busy_day(stack, day):
    """On `day`: a top-up, a payment (two entries), a fraud decline and a EUR payment."""
    payer, payee = new_id("usr"), new_id("usr")
    parties = {"payer_id": payer, "payee_id": payee}
    at = f"{day}T{{}}:00:00.000Z"
    deliver(stack, payer_id=payer, payee_id=payer, type="top_up", source="card",
            amount=1_000, occurred_at=at.format("08"))  # fmt: skip
    deliver(stack, **parties, type="payment", amount=300, occurred_at=at.format("09"))
    deliver(stack, **parties, type="payment", status="failed", failure_code="fraud_suspected",
            source="card", amount=200, occurred_at=at.format("10"))  # fmt: skip
    deliver(stack, **parties, type="payment", currency="EUR", amount=50,
            occurred_at=at.format("11"))  # fmt: skip
    return payer, payee


def whole_day(day: str) -> dict[str, str]:
    return {"from": f"{day}T00:00:00Z", "to": f"{day}T23:59:59.999Z"}


def admin_list(stack, **query: str) -> dict[str, Any]:
    answer = stack.call("AdminListTransactionsFunction", "ledger/admin_list_transactions.json",
        authorizer=ADMIN, query={"limit": "100", **query})  # fmt: skip
    assert answer.status == 200, answer.body
    return answer.body


def test_admins_list_everyones_entries_by_range_user_type_and_status(stack, day, busy_day):
    payer, payee = busy_day
    everyone = admin_list(stack, **whole_day(day))["data"]
    # newest first (the two entries of one outcome share its time, in either order)
    assert [e["amount"] for e in everyone] == [50, 50, 200, 300, 300, 1_000]
    assert sorted((e["amount"], e["user_id"]) for e in everyone) == sorted([
        (50, payer), (50, payee), (200, payer), (300, payer), (300, payee), (1_000, payer),
    ])  # fmt: skip
    only_payee = admin_list(stack, user_id=payee, **whole_day(day))["data"]
    assert [e["amount"] for e in only_payee] == [50, 300]
    failed = admin_list(stack, status="failed", **whole_day(day))["data"]
    assert [(e["amount"], e["failure_code"]) for e in failed] == [(200, "fraud_suspected")]
    # pages of two follow each other across the day
    seen, cursor = [], None
    while True:
        page = admin_list(
            stack, limit="2", **whole_day(day), **({"cursor": cursor} if cursor else {})
        )
        seen += [e["id"] for e in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == [e["id"] for e in everyone]


def test_admin_ranges_are_bounded_and_ordered(stack):
    too_long = stack.call(
        "AdminListTransactionsFunction",
        "ledger/admin_list_transactions.json",
        authorizer=ADMIN,
        query={"from": "2020-01-01T00:00:00Z", "to": "2021-06-01T00:00:00Z"},
    )
    assert too_long.status == 422 and too_long.body["errors"][0]["field"] == "from"
    before_time = stack.call("AdminListTransactionsFunction", "ledger/admin_list_transactions.json",
        authorizer=ADMIN, query={"to": "0001-01-01T00:00:00Z"})  # fmt: skip
    assert before_time.status == 422 and before_time.body["errors"][0]["field"] == "to"
    bad_user = stack.call("AdminListTransactionsFunction", "ledger/admin_list_transactions.json",
        authorizer=ADMIN, query={"user_id": "bob"})  # fmt: skip
    assert bad_user.status == 422 and bad_user.body["errors"][0]["field"] == "user_id"


def test_a_cursor_of_another_range_is_422_not_a_dynamodb_error(stack, day, busy_day):
    # Given a cursor of one day's listing
    page = admin_list(stack, limit="1", **whole_day(day))
    assert page["has_more"]
    # When it is used with a range it is not in (DynamoDB refuses such a start key)
    elsewhere = {"from": "2030-01-01T00:00:00Z", "to": "2030-01-02T00:00:00Z"}
    answer = stack.call("AdminListTransactionsFunction", "ledger/admin_list_transactions.json",
        authorizer=ADMIN, query={**elsewhere, "cursor": page["next_cursor"]})  # fmt: skip
    # Then it is refused as a bad cursor
    assert answer.status == 422 and answer.body["errors"][0]["field"] == "cursor"


def test_the_summary_counts_each_outcome_once(stack, day, busy_day):
    answer = stack.call("ReportSummaryFunction", "ledger/report_summary.json",
        authorizer=ADMIN, query=whole_day(day))  # fmt: skip
    assert answer.status == 200, answer.body
    summary = answer.body
    assert summary["outcomes"] == 4
    assert summary["groups"] == [
        {"currency": "EUR", "type": "payment", "status": "succeeded", "count": 1, "amount": 50},
        {"currency": "USD", "type": "payment", "status": "failed", "count": 1, "amount": 200},
        {"currency": "USD", "type": "payment", "status": "succeeded", "count": 1, "amount": 300},
        {"currency": "USD", "type": "top_up", "status": "succeeded", "count": 1, "amount": 1_000},
    ]
    assert summary["fraud_declines"] == [{"currency": "USD", "count": 1, "amount": 200}]
    assert summary["open_disputes"] == 0
    assert (summary["since"], summary["until"]) == (f"{day}T00:00:00.000Z", f"{day}T23:59:59.999Z")


def test_the_csv_export_streams_the_range_page_by_page(stack, day, busy_day):
    rows, pages, query = [], 0, {**whole_day(day), "limit": "4"}
    while True:
        answer = stack.call("ReportCsvFunction", "ledger/report_csv.json",
            authorizer=ADMIN, query=query)  # fmt: skip
        assert answer.status == 200
        assert answer.headers["Content-Type"] == "text/csv; charset=utf-8"
        text = answer.body
        table = list(csv.reader(io.StringIO(text)))
        assert table[0] == ["id", "occurred_at", "user_id", "payment_id", "type", "direction",
                            "amount", "currency", "status"]  # fmt: skip
        rows += table[1:]
        pages += 1
        if "X-Next-Cursor" not in answer.headers:
            assert "Link" not in answer.headers
            break
        assert answer.headers["Link"].startswith("</v1/admin/reports/transactions.csv?")
        assert answer.headers["Link"].endswith('>; rel="next"')
        query = {**query, "cursor": answer.headers["X-Next-Cursor"]}
    everyone = admin_list(stack, **whole_day(day))["data"]
    assert pages == 2
    assert [r[0] for r in rows] == [e["id"] for e in everyone]
    assert [(r[4], r[5], int(r[6]), r[7], r[8]) for r in rows] == [
        (e["type"], e["direction"], e["amount"], e["currency"], e["status"]) for e in everyone
    ]


def test_csv_page_size_is_bounded(stack):
    answer = stack.call("ReportCsvFunction", "ledger/report_csv.json",
        authorizer=ADMIN, query={"limit": "5001"})  # fmt: skip
    assert answer.status == 422 and answer.body["errors"][0]["field"] == "limit"


def test_the_audit_finds_a_balance_that_is_not_what_the_log_says(stack, new_user):
    # Given a user whose top-up is in the log (a copy holding only their chain)
    stack.skip_changes()
    user = new_user()
    assert top_up(stack, user, add_card(stack, user), 1_000).body["status"] == "succeeded"
    stack.settle()

    def audit_of(user_id: str) -> list[dict[str, Any]]:
        with log_copy(stack, user_id):
            report = stack.call("AuditVerifyFunction", "ledger/audit_verify.json",
                authorizer=ADMIN).body  # fmt: skip
        return [d for d in report["discrepancies"] if d["user_id"] == user_id]

    assert audit_of(user.id) == []
    # When their balance is changed behind the log's back
    aws.dynamodb().update_item(
        TableName=get_settings().accounts_table,
        Key=dynamo.serialize({"pk": f"USER#{user.id}", "sk": "BALANCE#USD"}),
        UpdateExpression="SET available = available + :one",
        ExpressionAttributeValues=dynamo.serialize({":one": 1}),
    )
    # Then the audit names the balance
    assert audit_of(user.id) == [
        {"kind": "balance", "user_id": user.id, "currency": "USD", "balance": 1_001,
         "log_balance": 1_000, "first_bad_seq": None, "problem": None, "pending": 0,
         "payment_id": None, "amount": None, "card_balance": None, "outcome_id": None,
         "since": None},
    ]  # fmt: skip


def test_open_disputes_are_counted_in_the_summary(stack, new_user):
    stack.skip_changes()
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 500)
    payment = pay(stack, payer, payee.id, 100).body
    stack.settle()

    def open_count() -> int:
        return int(stack.call("ReportSummaryFunction", "ledger/report_summary.json",
            authorizer=ADMIN, query={}).body["open_disputes"])  # fmt: skip

    before = open_count()
    assert open_dispute(stack, payer, paid_entry(stack, payer, payment["id"])["id"]).status == 201
    assert open_count() == before + 1


def test_a_payment_committed_while_the_audit_reads_is_in_flight_not_drift(
    stack, new_user, monkeypatch
):
    # Given a user with a top-up in the log, and the audit's figures before any race
    stack.skip_changes()
    payer = new_user()
    card = add_card(stack, payer)
    top_up(stack, payer, card, 1_000)
    stack.settle()

    def gaps(audit: reports.Audit) -> dict[str | None, int]:  # what other tests left, per currency
        return {d.currency: (d.balance or 0) - (d.card_balance or 0)
                for d in audit.discrepancies if d.kind == "conservation"}  # fmt: skip

    before = gaps(reports.audit())
    # When a top-up of 250 commits after the audit read the balances and before it read the
    # payments
    whole_scan = reports.payments.all_records

    def commit_then_scan() -> Any:
        monkeypatch.setattr(reports.payments, "all_records", whole_scan)
        assert top_up(stack, payer, card, 250).body["status"] == "succeeded"
        return whole_scan()

    monkeypatch.setattr(reports.payments, "all_records", commit_then_scan)
    report = reports.audit()
    # Then it is in flight: neither the payer's balance nor USD's conservation is drift
    assert not [d for d in report.discrepancies if d.user_id == payer.id]
    assert gaps(report) == before
    assert [(p.user_id, p.amount) for p in report.pending if p.user_id == payer.id] == [
        (payer.id, 250)
    ]
    stack.settle()


@pytest.fixture
def day_shards(monkeypatch):
    """Sets CASHEW_LOG_DAY_SHARDS for the rest of the test (settings read anew)."""

    def use(shards: int) -> None:
        monkeypatch.setenv("CASHEW_LOG_DAY_SHARDS", str(shards))
        get_settings.cache_clear()

    yield use
    monkeypatch.undo()
    get_settings.cache_clear()


def test_a_sharded_day_lists_everyone_once_newest_first_across_pages(stack, day, day_shards):
    # Given a day's outcomes logged with one DayIndex partition, then more with five shards
    # (the number raised meanwhile), several of them at the same instant
    payer, payee = new_id("usr"), new_id("usr")
    at = f"{day}T12:{{:02d}}:00.000Z"
    for minute in range(6):
        deliver(stack, payer_id=payer, payee_id=payee, type="payment", amount=100 + minute,
                occurred_at=at.format(minute))  # fmt: skip
    day_shards(5)
    for n in range(6, 20):
        deliver(stack, payer_id=payer, payee_id=payee, type="payment", amount=100 + n,
                occurred_at=at.format(n // 2 + 3))  # fmt: skip
    # Then the day's entries sit in more than one partition, the first ones in the bare day
    table = stack.env["CASHEW_LOG_TABLE"]
    items = [
        dynamo.deserialize(raw)
        for raw in stack.clients("dynamodb").scan(TableName=table)["Items"]
        if raw.get("occurred_at", {}).get("S", "").startswith(day)
    ]
    partitions = {item["day"] for item in items}
    assert day in partitions and len(partitions) >= 3
    assert all(p == day or p.startswith(f"{day}#") for p in partitions)
    # When an admin lists the day whole, and page by page, three entries at a time
    everyone = admin_list(stack, **whole_day(day))["data"]
    seen, cursor = [], None
    while True:
        page = admin_list(
            stack, limit="3", **whole_day(day), **({"cursor": cursor} if cursor else {})
        )
        seen += [e["id"] for e in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    # Then every entry comes once (payer's and payee's of 20 outcomes), newest first, and
    # the pages give exactly the whole list
    assert len(everyone) == 40 and len({e["id"] for e in everyone}) == 40
    times = [e["occurred_at"] for e in everyone]
    assert times == sorted(times, reverse=True)
    assert seen == [e["id"] for e in everyone]
    # ... and the summary counts each outcome once
    answer = stack.call("ReportSummaryFunction", "ledger/report_summary.json",
        authorizer=ADMIN, query=whole_day(day))  # fmt: skip
    assert answer.status == 200 and answer.body["outcomes"] == 20, answer.body
    # ... even for a reader whose setting says one shard (updated after the writer, or
    # lowered): the day's note says five were written
    day_shards(1)
    assert [e["id"] for e in admin_list(stack, **whole_day(day))["data"]] == seen
    # ... and the note is in no user's chain (the audit reads every chain)
    from cashew.ledger import store

    assert not [user for user, _, _ in store.all_chains() if user.startswith("DAYSHARDS")]
