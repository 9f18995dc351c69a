"""Password reset and security emails, without AWS: token shape, the link, what the emails
say, and malformed tokens refused before any read."""

from __future__ import annotations

import typing

import pytest

from cashew.auth.recovery import service
from cashew.errors import InvalidTokenError
from cashew.notifications import security


def test_the_link_opens_the_web_clients_reset_page_with_the_token_quoted():
    link = service._link("usr_01J8Z6Q9V7X3K2M4N5P6R7S8T9.a-b_c")
    assert link == "http://127.0.0.1:3000/#/reset?token=usr_01J8Z6Q9V7X3K2M4N5P6R7S8T9.a-b_c"


def test_the_stored_hash_is_sha256_of_the_whole_token():
    digest = service.token_hash("usr_x.secret")
    assert len(digest) == 64 and digest != service.token_hash("usr_y.secret")


@pytest.mark.parametrize(
    "token", ["", "nodot", ".secret", "usr_x.secret", "ses_01J8Z6Q9V7X3K2M4N5P6R7S8T9.s",
              "usr_01J8Z6Q9V7X3K2M4N5P6R7S8T9."],
)  # fmt: skip
def test_malformed_tokens_are_invalid_without_a_read(token, monkeypatch):
    monkeypatch.setattr(service.store, "get", lambda _: pytest.fail("read a malformed token"))
    with pytest.raises(InvalidTokenError):
        service.confirm_reset(token, "a new horse battery staple")


def test_every_kind_has_its_words():
    for kind in typing.get_args(security.Kind):
        rendered = security.compose(kind, "Ada")
        assert rendered.subject and "Ada" in rendered.text and "Ada" in rendered.html


def test_the_reset_email_carries_the_link_in_text_and_escaped_html():
    link = "http://app.example/#/reset?token=usr_1.a&b"
    rendered = security.compose("password_reset_requested", "<Ada>", link)
    assert link in rendered.text
    assert 'href="http://app.example/#/reset?token=usr_1.a&amp;b"' in rendered.html
    assert "&lt;Ada&gt;" in rendered.html and "<Ada>" not in rendered.html


def test_emails_without_a_link_carry_none():
    assert "http" not in security.compose("password_changed", "Ada").text


def test_the_new_sign_in_email_says_when_from_what_and_where_escaped():
    sign_in = security.SignIn(
        "2026-12-01T22:43:05Z", '<script>alert(1)</script> Firefox/133 "x"', "203.0.113.7"
    )
    rendered = security.compose("new_sign_in", "Ada", rows=sign_in.rows())
    assert rendered.subject == "New sign-in to your Cashew account"
    for body in (rendered.text, rendered.html):
        assert "1 December 2026, 22:43 UTC" in body
        assert "203.0.113.7" in body
    assert '<script>alert(1)</script> Firefox/133 "x"' in rendered.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Firefox/133 &quot;x&quot;" in rendered.html
    assert "<script>" not in rendered.html


def test_the_new_sign_in_email_truncates_the_user_agent_to_one_line():
    agent = "Mozilla/5.0\r\nBcc: victim@example.com " + "A" * 1000
    (_, _), (_, shown), (_, _) = security.SignIn("2026-12-01T22:43:05Z", agent, "").rows()
    assert len(shown) == security.USER_AGENT_CHARS and shown.endswith("…")
    assert "\r" not in shown and "\n" not in shown
    assert security.SignIn("2026-12-01T22:43:05Z", "", "").rows()[1:] == (
        ("Device", "unknown"),
        ("IP address", "unknown"),
    )


def test_only_the_new_sign_in_email_carries_details():
    assert "IP address" not in security.compose("password_changed", "Ada").text
    assert "IP address" not in security.compose("password_changed", "Ada").html
