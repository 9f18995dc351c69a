"""The admin's journey through the web client in Chromium: resolve a dispute, read the report
(the summary as a chart, the CSV downloaded with its progress), run the audit, add a webhook
endpoint. A user who is not an admin sees none of those pages."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from playwright.sync_api import expect

from tests.browser.conftest import Client
from tests.browser.test_user_journey import PASSWORD, _register, _sign_in
from tests.e2e.conftest import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    User,
    add_card,
    pay,
    top_up,
    wait_for_entries,
)


def _user(client: Client, name: str) -> User:
    registered = _register(client, name)
    login = client.stack.request(
        "POST", "/v1/auth/login", json={"email": registered["email"], "password": PASSWORD}
    ).json()
    return User(
        registered["id"],
        registered["email"],
        PASSWORD,
        login["access_token"],
        login["refresh_token"],
    )


def _dispute(client: Client) -> str:
    """A payer who paid a payee 10.00 and disputes it; the dispute's id."""
    payer, payee = _user(client, "Disputer"), _user(client, "Merchant")
    top_up(client.stack, payer, add_card(client.stack, payer, cvc="0482"), 5000)
    paid = pay(client.stack, payer, payee.id, 1000)
    assert paid.status_code == 201, paid.text
    [entry] = wait_for_entries(client.stack, payer.token, payment_id=paid.json()["id"])
    opened = client.stack.request(
        "POST",
        f"/v1/transactions/{entry['id']}/disputes",
        payer.token,
        json={"reason": "fraudulent", "details": "not me"},
    )
    assert opened.status_code == 201, opened.text
    return str(opened.json()["id"])


def test_the_admin_journey(client: Client, page: Any, shot: Callable[[Any, str], Path]) -> None:
    dispute_id = _dispute(client)
    page.goto(client.url + "/#/sign-in")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Balances")).to_be_visible()

    page.get_by_role("link", name="Admin: disputes").click()
    won = page.get_by_role("button", name=f"Refund the payer of {dispute_id} (won)")
    expect(won).to_be_visible()
    shot(page, "admin-disputes")
    won.click()
    expect(won).to_have_count(0)
    page.get_by_label("Status").select_option("won")
    expect(page.get_by_role("row").filter(has_text="fraudulent").first).to_be_visible()

    page.get_by_role("link", name="Reports").click()
    page.get_by_role("button", name="Show the summary").click()
    expect(page.get_by_test_id("report-chart")).to_be_visible()
    expect(page.get_by_role("cell", name="top_up").first).to_be_visible()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download the CSV").click()
    download = download_info.value
    expect(page.get_by_role("status").filter(has_text="Saved transactions.csv")).to_be_visible()
    expect(page.get_by_label("CSV download")).to_be_attached()
    shot(page, "admin-reports")
    header = Path(download.path()).read_text().splitlines()[0]
    assert "amount" in header and "currency" in header, header
    # the same range as a background job: followed to its link
    page.get_by_role("button", name="Export the last 30 days in the background").click()
    link = page.get_by_role("link", name="Download transactions.csv")
    expect(link).to_be_visible(timeout=30_000)
    expect(page.get_by_test_id("job-transactions_csv")).to_contain_text("succeeded")
    exported = requests.get(str(link.get_attribute("href")), timeout=10)
    assert exported.status_code == 200 and exported.text.splitlines()[0] == header

    page.get_by_role("link", name="Audit").click()
    page.get_by_role("button", name="Run the audit").click()
    results = page.get_by_test_id("audit-results")
    expect(results).to_be_visible(timeout=30_000)
    expect(results).not_to_contain_text("FAIL")
    shot(page, "admin-audit")
    page.get_by_role("button", name="Audit in the background").click()
    expect(page.get_by_role("link", name="Download audit.json")).to_be_visible(timeout=60_000)

    page.get_by_role("link", name="Webhooks").click()
    # No network here: a loopback URL, which only the local stack accepts (deployed: https
    # to a public host). It is deleted again, so no later payment is delivered to it.
    hook = "http://127.0.0.1:9/cashew-hooks"
    page.get_by_label("URL").fill(hook)
    page.get_by_role("button", name="Add endpoint").click()
    expect(page.get_by_test_id("webhook-secret")).to_have_text(re.compile(r"^whsec_"))
    expect(page.get_by_role("cell", name=hook, exact=True)).to_be_visible()
    shot(page, "admin-webhooks")
    page.get_by_role("button", name=f"Delete {hook}").click()
    expect(page.get_by_role("cell", name=hook, exact=True)).to_have_count(0)


def test_a_user_sees_no_admin_page(client: Client, page: Any) -> None:
    user = _register(client, "Plain")
    _sign_in(page, client, user["email"])
    expect(page.get_by_role("link", name="Reports")).to_have_count(0)
    page.goto(client.url + "/#/admin/audit")
    expect(page.get_by_role("heading", name="Balances")).to_be_visible()
