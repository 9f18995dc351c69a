"""A person's whole journey through the web client, by mouse and keyboard, in Chromium.

Sign up, verify the email from the inbox's link, sign in, add a card (tokenised by the
sandbox, never sent to Cashew), top up, pay a second user, pay out, see the history with a
receipt verified in the browser, open a dispute, turn on two-step verification and sign in
again with it, and sign a session out. Every page's screenshot is kept.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Client, inbox

PASSWORD = "a long passphrase for the browser"


def _register(client: Client, name: str) -> dict[str, Any]:
    email = f"{name.lower()}-{uuid.uuid4().hex[:8]}@example.com"
    answer = client.stack.request(
        "POST", "/v1/users", json={"email": email, "name": name, "password": PASSWORD}
    )
    assert answer.status_code == 201, answer.text
    return {**answer.json(), "email": email}


def _sign_in(page: Any, client: Client, email: str) -> None:
    page.goto(client.url + "/#/sign-in")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Balances")).to_be_visible()


def _open(page: Any, link: str, heading: str) -> None:
    """Follow a link of the menu, and wait until its page is the one shown.

    Pages share field labels ("Amount" is on Top up, Pay and Payouts), so a field filled
    before the new page has replaced the old one would be the old page's, lost with it.
    """
    page.get_by_role("link", name=link, exact=True).click()
    expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()


def _add_card(page: Any) -> None:
    _open(page, "Cards", "Cards")
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiry (MM/YY)").fill("12/34")
    page.get_by_label("CVC").fill("0731")
    page.get_by_role("button", name="Add card").click()
    expect(page.get_by_role("status")).to_contain_text("4242")


def test_the_whole_journey(client: Client, page: Any, shot: Callable[[Any, str], Path]) -> None:
    payee = _register(client, "Payee")
    email = f"journey-{uuid.uuid4().hex[:8]}@example.com"

    # Sign up, and verify the email by the link the inbox holds
    page.goto(client.url + "/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shot(page, "sign-in")
    page.get_by_role("link", name="Create an account").click()
    page.get_by_label("Name").fill("Journey Person")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    shot(page, "sign-up")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Check your email")).to_be_visible()
    (mail,) = [m for m in inbox(client, email) if "verify-email" in m["text"]][:1]
    token = re.search(r"#/verify-email\?token=([A-Za-z0-9_.\-]+)", mail["text"]).group(1)
    page.goto(f"{client.url}/#/verify-email?token={token}")
    expect(page.get_by_role("status")).to_contain_text("verified")
    shot(page, "verify-email")

    _sign_in(page, client, email)
    shot(page, "balances-empty")
    # Another device signs in too (its session is listed, and signed out, at the end)
    other_device = client.stack.request(
        "POST", "/v1/auth/login", json={"email": email, "password": PASSWORD}
    )
    assert other_device.status_code == 200, other_device.text
    _add_card(page)
    shot(page, "cards")

    # Top up 50.00, pay 12.34 to the payee, pay out 5.00
    _open(page, "Top up", "Top up")
    page.get_by_label("Amount").fill("50.00")
    page.get_by_role("button", name="Top up").click()
    expect(page.get_by_test_id("outcome-status")).to_have_text("succeeded")
    shot(page, "top-up")

    _open(page, "Pay", "Pay someone")
    page.get_by_label("Payee's user id").fill(payee["id"])
    page.get_by_label("Amount").fill("12.34")
    page.get_by_label("Description (optional)").fill("Lunch")
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_test_id("outcome-status")).to_have_text("succeeded")
    shot(page, "pay")

    _open(page, "Payouts", "Pay out to your card")
    page.get_by_label("Amount").fill("5")
    page.get_by_role("button", name="Pay out").click()
    expect(page.get_by_test_id("outcome-status")).to_have_text("paid")
    shot(page, "payouts")

    _open(page, "Balances", "Balances")
    expect(page.get_by_test_id("balance-USD")).to_have_text(re.compile(r"32\.66"))
    shot(page, "balances")

    # History: a receipt verified in the browser, and a dispute of the payment
    _open(page, "History", "History")
    expect(page.get_by_role("button", name=re.compile("^Receipt of")).first).to_be_visible(
        timeout=30_000
    )
    page.get_by_role("button", name=re.compile("^Receipt of")).first.click()
    expect(page.get_by_test_id("receipt-verdict")).to_contain_text("Verified:", timeout=15_000)
    shot(page, "history-receipt")
    page.get_by_role("button", name=re.compile("^Dispute")).first.click()
    page.get_by_label("Reason").select_option("duplicate")
    page.get_by_role("button", name="Open dispute").click()
    expect(page.get_by_role("status").filter(has_text="Dispute")).to_contain_text("opened")
    _open(page, "Disputes", "My disputes")
    expect(page.get_by_role("cell", name="duplicate")).to_be_visible()
    shot(page, "disputes")

    # Two-step verification on, then a sign-in with a recovery code
    _open(page, "Settings", "Profile")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Set up an authenticator app").click()
    import pyotp  # the layer's own dependency

    secret = page.get_by_test_id("totp-secret").inner_text()
    page.get_by_label("Code from the app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on").click()
    recovery = page.get_by_test_id("recovery-codes").locator("code").first.inner_text()
    shot(page, "settings-mfa")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label(re.compile("Code from your authenticator app")).fill(recovery)
    shot(page, "sign-in-mfa")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Balances")).to_be_visible()

    # Sessions: the other device's and this one (signing out ended the first); end the other
    _open(page, "Sessions", "Sessions")
    rows = page.get_by_role("button", name=re.compile("^Sign out session"))
    expect(rows).to_have_count(2)
    shot(page, "sessions")
    page.get_by_role("row").filter(has_not_text="(this one)").get_by_role("button").click()
    expect(rows).to_have_count(1)
    refreshed = client.stack.request(
        "POST", "/v1/auth/refresh", json={"refresh_token": other_device.json()["refresh_token"]}
    )
    assert refreshed.status_code == 401, refreshed.text


def test_a_double_click_pays_once(client: Client, page: Any) -> None:
    payer, payee = _register(client, "Payer"), _register(client, "Payee")
    _sign_in(page, client, payer["email"])
    _add_card(page)
    _open(page, "Top up", "Top up")
    page.get_by_label("Amount").fill("20")
    page.get_by_role("button", name="Top up").dblclick()
    expect(page.get_by_test_id("outcome-status")).to_have_text("succeeded")

    _open(page, "Pay", "Pay someone")
    page.get_by_label("Payee's user id").fill(payee["id"])
    page.get_by_label("Amount").fill("7.00")
    button = page.get_by_role("button", name="Pay")
    # Two clicks in one tick (before any answer or render), then a person's double click
    button.evaluate("(b) => { b.click(); b.click(); }")
    button.dblclick(force=True)
    expect(page.get_by_test_id("outcome-status")).to_have_text("succeeded")
    button.dblclick(force=True)  # after the outcome: the form is cleared, nothing is sent

    login = client.stack.request(
        "POST", "/v1/auth/login", json={"email": payer["email"], "password": PASSWORD}
    ).json()
    token = login["access_token"]
    payments = client.stack.request("GET", "/v1/payments", token=token).json()["data"]
    paid = [p for p in payments if p["type"] == "payment"]
    top_ups = [p for p in payments if p["type"] == "top_up"]
    assert len(paid) == 1, paid
    assert len(top_ups) == 1, top_ups
    balances = client.stack.request("GET", "/v1/users/me/balances", token=token).json()["data"]
    assert balances == [{"currency": "USD", "available": 1300}]
