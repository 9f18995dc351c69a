"""The transaction log, disputes and the admin endpoints over HTTP, through the authorizer,
against the local stack with its queue consumers and stream publisher running."""

from __future__ import annotations

import csv
import io
import time
import uuid
from typing import Any

import pytest
import requests

from tests.e2e.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    add_card,
    balance,
    pay,
    top_up,
    wait_for_entries,
)

ADMIN_PATHS = [
    ("GET", "/v1/admin/transactions"),
    ("GET", "/v1/admin/disputes?status=open"),
    ("POST", "/v1/admin/disputes/dsp_01JCQ3K2K4M6N8P0Q2R4S6T8V2/resolve"),
    ("GET", "/v1/admin/reports/summary"),
    ("GET", "/v1/admin/reports/transactions.csv"),
    ("GET", "/v1/admin/audit/verify"),
    ("POST", "/v1/admin/jobs"),
    ("GET", "/v1/admin/jobs/job_01JCQ3K2K4M6N8P0Q2R4S6T8V2"),
]


@pytest.fixture
def admin_token(stack) -> str:
    login = stack.request(
        "POST", "/v1/auth/login", json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    )
    assert login.status_code == 200, login.text
    return str(login.json()["access_token"])


def eventually(check, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.3)


@pytest.mark.parametrize(("method", "path"), ADMIN_PATHS)
def test_every_admin_path_is_403_for_a_user_and_401_without_a_token(stack, new_user, method, path):
    user = new_user()
    as_user = stack.request(method, path, user.token, json={"outcome": "won"})
    assert as_user.status_code == 403, as_user.text
    assert as_user.json()["code"] == "forbidden"
    assert as_user.headers["Content-Type"] == "application/problem+json"
    assert stack.request(method, path).status_code == 401


def test_a_payment_its_log_a_dispute_won_and_the_audit(stack, new_user, admin_token):
    # Given a payer who topped up and paid a payee
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 5_000)
    paid = stack.request("POST", "/v1/payments", payer.token,
        headers={"Idempotency-Key": str(uuid.uuid4())},
        json={"amount": 1_200, "currency": "USD", "payee_id": payee.id,
              "source": {"type": "balance"}}).json()  # fmt: skip
    assert paid["status"] == "succeeded"
    # When the payer reads their log, filtered
    [entry] = wait_for_entries(stack, payer.token, payment_id=paid["id"], status="succeeded")
    filtered = stack.request("GET", "/v1/transactions?type=payment&status=succeeded", payer.token)
    assert [e["id"] for e in filtered.json()["data"]] == [entry["id"]]
    window = stack.request("GET", "/v1/transactions", payer.token,
        params={"from": entry["occurred_at"], "to": entry["occurred_at"]}).json()  # fmt: skip
    assert entry["id"] in [e["id"] for e in window["data"]]
    # ... reads the entry, and verifies the chain
    one = stack.request("GET", f"/v1/transactions/{entry['id']}", payer.token)
    assert one.status_code == 200 and one.json() == entry
    assert stack.request("GET", f"/v1/transactions/{entry['id']}", payee.token).status_code == 404
    verified = stack.request("GET", "/v1/transactions/verify", payer.token).json()
    assert verified["valid"] and verified["entries"] == 2
    # ... disputes it
    opened = stack.request("POST", f"/v1/transactions/{entry['id']}/disputes", payer.token,
        json={"reason": "product_not_received", "details": "nothing came"})  # fmt: skip
    assert opened.status_code == 201, opened.text
    dispute = opened.json()
    mine = stack.request("GET", "/v1/disputes", payer.token).json()["data"]
    assert [d["id"] for d in mine] == [dispute["id"]]
    # Then an admin finds it and resolves it as won: the payer is refunded by the payee
    listed = stack.request("GET", "/v1/admin/disputes?status=open&limit=100", admin_token).json()
    assert dispute["id"] in [d["id"] for d in listed["data"]]
    won = stack.request("POST", f"/v1/admin/disputes/{dispute['id']}/resolve", admin_token,
        json={"outcome": "won", "note": "no proof of delivery"})  # fmt: skip
    assert won.status_code == 200, won.text
    assert (balance(stack, payer), balance(stack, payee)) == (5_000, 0)
    # ... and the refund and the outcome reach both logs
    assert wait_for_entries(stack, payer.token, type="refund", direction="credit")
    assert wait_for_entries(stack, payer.token, type="dispute", status="won")
    assert wait_for_entries(stack, payee.token, type="dispute", status="won", direction="debit")
    # ... the admin sees them, the summary counts them, the CSV lists them
    admin_view = stack.request("GET", "/v1/admin/transactions", admin_token,
        params={"user_id": payee.id, "type": "refund"}).json()["data"]  # fmt: skip
    assert [(e["direction"], e["amount"]) for e in admin_view] == [("debit", 1_200)]
    summary = stack.request("GET", "/v1/admin/reports/summary", admin_token).json()
    groups = {(g["currency"], g["type"], g["status"]): g for g in summary["groups"]}
    assert groups["USD", "dispute", "won"]["count"] >= 1
    exported = stack.request("GET", "/v1/admin/reports/transactions.csv", admin_token,
        params={"limit": "5000"})  # fmt: skip
    assert exported.headers["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert {r["id"] for r in rows} >= {entry["id"]}

    # ... and once everything in flight has arrived, the audit finds nothing wrong
    def clean() -> dict[str, Any] | None:
        audit = stack.request("GET", "/v1/admin/audit/verify", admin_token).json()
        return audit if audit["chains_valid"] and audit["balances_match"] else None

    assert eventually(clean, timeout=30), stack.request(
        "GET", "/v1/admin/audit/verify", admin_token
    ).json()


def test_an_admin_exports_and_audits_in_the_background(stack, new_user, admin_token):
    # Given a balance payment in the log
    payer, payee = new_user(), new_user()
    card = add_card(stack, payer)
    top_up(stack, payer, card, 1_000)
    pay(stack, payer, payee.id, 250)
    [entry] = wait_for_entries(stack, payee.token, type="payment")
    # When an admin starts a CSV export of today and an audit, and follows them
    started = {
        kind: stack.request("POST", "/v1/admin/jobs", admin_token, json={"type": kind})
        for kind in ("transactions_csv", "audit")
    }
    for answer in started.values():
        assert answer.status_code == 202, answer.text
        assert answer.headers["Location"] == f"/v1/admin/jobs/{answer.json()['id']}"

    def finished(kind: str) -> dict[str, Any] | None:
        job = stack.request("GET", started[kind].headers["Location"], admin_token).json()
        assert job["status"] in ("queued", "running", "succeeded"), job
        return job if job["status"] == "succeeded" else None

    # Then each succeeds, with a link to its file
    csv_job, audit_job = (
        eventually(lambda: finished("transactions_csv")),
        eventually(lambda: finished("audit")),
    )
    assert csv_job and csv_job["progress"] == 100 and audit_job and audit_job["progress"] == 100
    exported = requests.get(csv_job["download_url"], timeout=10)
    assert exported.status_code == 200
    assert exported.headers["Content-Disposition"] == 'attachment; filename="transactions.csv"'
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert entry["id"] in {r["id"] for r in rows} and len(rows) == csv_job["rows"]
    audit = requests.get(audit_job["download_url"], timeout=10).json()
    assert audit_job["result"]["chains"] == audit["chains"] and audit["chains_valid"]
