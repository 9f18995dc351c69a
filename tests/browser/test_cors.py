"""CORS in a real browser: the client served from an origin the stack allows talks to the API
(preflighted requests included, exposed headers readable); the same client from an origin
the stack does not allow cannot read a single answer."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Client
from tests.e2e.conftest import ADMIN_EMAIL, ADMIN_PASSWORD

# Run in the page: a simple GET, a preflighted POST (JSON body) and a preflighted GET with
# an Authorization header, each answering what the page could read of it.
_CALLS = """async (api) => {
  const read = async (promise) => {
    try {
      const response = await promise;
      return {ok: true, status: response.status, requestId: response.headers.get("X-Request-Id"),
              body: await response.text()};
    } catch (error) {
      return {ok: false, error: String(error)};
    }
  };
  return {
    health: await read(fetch(api + "/v1/health")),
    login: await read(fetch(api + "/v1/auth/login", {method: "POST",
      headers: {"Content-Type": "application/json"},
      body: JSON.stringify({email: "nobody@example.com", password: "not the password"})})),
    jwks: await read(fetch(api + "/.well-known/jwks.json")),
  };
}"""


def test_an_allowed_origin_reads_the_api(client: Client, page: Any) -> None:
    page.goto(client.other_url + "/")
    answers = page.evaluate(_CALLS, client.url)

    assert answers["health"]["ok"] and answers["health"]["status"] == 200
    assert answers["health"]["requestId"], "X-Request-Id must be exposed"
    assert answers["login"]["ok"] and answers["login"]["status"] == 401  # preflight passed
    assert '"code":"invalid_credentials"' in answers["login"]["body"].replace(" ", "")
    assert answers["jwks"]["ok"] and answers["jwks"]["status"] == 200

    # The client itself, from that origin: signs in and reads balances across origins
    _sign_in(page)
    expect(page.get_by_role("heading", name="Balances")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_count(0)


def test_another_origin_reads_nothing(client: Client, page: Any, page_errors: list[str]) -> None:
    page.goto(client.foreign_url + "/")
    answers = page.evaluate(_CALLS, client.url)
    page_errors.clear()  # Chromium reports each refusal on the console: that is the point

    for name, answer in answers.items():
        assert not answer["ok"], f"{name} was readable from a foreign origin: {answer}"
        assert "TypeError" in answer["error"]

    # The client from that origin can't sign in: it says the API cannot be reached
    _sign_in(page)
    expect(page.get_by_role("alert")).to_contain_text("Network error")
    page_errors.clear()


def _sign_in(page: Any) -> None:
    page.goto(page.url.split("#")[0] + "#/sign-in")
    page.get_by_label("Email").fill(ADMIN_EMAIL)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
