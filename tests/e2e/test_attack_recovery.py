"""Attacks on password reset over HTTP against the local stack (issue 13, "Done when" 2 and
3; API.md "Account recovery"; properties 43 and 45). Tokens are read from the local inbox,
as the user would read them from the email."""

from __future__ import annotations

import re
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

from tests.e2e.conftest import PASSWORD
from tests.support.secrets_seen import all_items

NEW_PASSWORD = "a brand new horse battery staple"
_LINK = re.compile(r"/#/reset\?token=([A-Za-z0-9_.%\-]+)")
# What may differ between two answers that say the same: the request's id and the date.
_VARYING = {"x-request-id", "date", "x-amzn-requestid", "x-amz-apigw-id", "content-length"}


def _inbox(stack, address: str, count: int, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        reply = stack.http.get(f"{stack.url}/_local/mail.json", params={"to": address}, timeout=10)
        assert reply.status_code == 200, reply.text
        mails: list[dict] = reply.json()["data"]
        if len(mails) >= count or time.monotonic() > deadline:
            return mails


def _request(stack, email: str):
    return stack.request("POST", "/v1/auth/password-reset", json={"email": email})


def _reset_token(stack, email: str) -> str:
    """Request a reset and read its token from the newest reset email."""
    before = len([m for m in _inbox(stack, email, 0) if "Reset your" in m["subject"]])
    assert _request(stack, email).status_code == 202
    mails = [m for m in _inbox(stack, email, before + 1) if "Reset your" in m["subject"]]
    while len(mails) <= before:
        mails = [m for m in _inbox(stack, email, 99, timeout=0.5) if "Reset your" in m["subject"]]
    match = _LINK.search(mails[0]["text"])
    assert match, mails[0]["text"]
    return unquote(match.group(1))


def _confirm(stack, token: str, password: str = NEW_PASSWORD):
    return stack.request(
        "POST", "/v1/auth/password-reset/confirm", json={"token": token, "new_password": password}
    )


def _login(stack, email: str, password: str):
    return stack.request("POST", "/v1/auth/login", json={"email": email, "password": password})


def _invalid(reply) -> bool:
    return reply.status_code == 400 and reply.json()["code"] == "invalid_token"


def test_a_reset_ends_every_session_at_once_and_the_old_password(stack, new_user):
    user = new_user()
    second = _login(stack, user.email, PASSWORD).json()
    token = _reset_token(stack, user.email)
    assert _confirm(stack, token).status_code == 204
    for access in (user.token, second["access_token"]):  # access tokens die at once
        assert stack.request("GET", "/v1/users/me", access).status_code == 401
    for refresh in (user.refresh_token, second["refresh_token"]):
        reply = stack.request("POST", "/v1/auth/refresh", json={"refresh_token": refresh})
        assert reply.status_code == 401
    assert _login(stack, user.email, PASSWORD).status_code == 401
    assert _login(stack, user.email, NEW_PASSWORD).status_code == 200
    subjects = [m["subject"] for m in _inbox(stack, user.email, 0)]
    # the reset request's email, the reset's, and the new-sign-in emails of the logins
    assert "Your Cashew password was reset" in subjects


def test_used_voided_and_other_users_tokens_are_invalid(stack, new_user):
    alice, bob = new_user(), new_user()
    voided = _reset_token(stack, alice.email)
    current = _reset_token(stack, alice.email)
    assert _invalid(_confirm(stack, voided))  # a newer token voided it
    bobs = _reset_token(stack, bob.email)
    forged = f"{alice.id}.{bobs.partition('.')[2]}"  # Bob's secret under Alice's id
    assert _invalid(_confirm(stack, forged))
    assert _confirm(stack, current).status_code == 204
    assert _invalid(_confirm(stack, current, "yet another horse battery"))  # used
    assert _invalid(_confirm(stack, current.upper()))
    assert _login(stack, bob.email, PASSWORD).status_code == 200  # Bob's untouched


def test_eight_concurrent_confirms_with_one_token_let_exactly_one_through(stack, new_user):
    user = new_user()
    token = _reset_token(stack, user.email)
    with ThreadPoolExecutor(8) as pool:
        replies = list(pool.map(lambda i: _confirm(stack, token, f"{NEW_PASSWORD} {i}"), range(8)))
    statuses = sorted(r.status_code for r in replies)
    assert statuses == [204] + [400] * 7, statuses
    winner = next(i for i, r in enumerate(replies) if r.status_code == 204)
    assert _login(stack, user.email, f"{NEW_PASSWORD} {winner}").status_code == 200


def test_unknown_and_known_emails_are_indistinguishable(stack, new_user):
    # Given 4 accounts and 4 addresses without one (5 requests each: the hourly limit)
    known = [new_user().email for _ in range(4)]
    unknown = [f"nobody-{uuid.uuid4().hex[:12]}@example.com" for _ in range(4)]
    _request(stack, f"warm-{uuid.uuid4().hex[:8]}@example.com")  # both functions warm
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    answers: dict[str, set[tuple]] = {"known": set(), "unknown": set()}
    # When each is asked for a reset 5 times, interleaved
    for round_ in range(5):
        for kind, emails in (("known", known), ("unknown", unknown))[:: 1 if round_ % 2 else -1]:
            for email in emails:
                started = time.perf_counter()
                reply = _request(stack, email)
                times[kind].append(time.perf_counter() - started)
                headers = tuple(
                    sorted((k.lower(), v) for k, v in reply.headers.items()
                           if k.lower() not in _VARYING)
                )  # fmt: skip
                answers[kind].add((reply.status_code, reply.content, headers))
    # Then every answer is the same, byte for byte apart from the request id and date
    assert answers["known"] == answers["unknown"]
    assert len(answers["known"]) == 1
    assert next(iter(answers["known"]))[:2] == (202, b"{}")
    # ... and their median times are within 20 % of each other
    known_median, unknown_median = (statistics.median(times[k]) for k in ("known", "unknown"))
    print(f"reset medians: known {known_median:.4f} s, unknown {unknown_median:.4f} s")
    assert abs(known_median - unknown_median) <= 0.2 * max(known_median, unknown_median), times
    # ... and a sixth request is refused alike, with Retry-After
    for email in (known[0], unknown[0]):
        limited = _request(stack, email)
        assert limited.status_code == 429 and limited.json()["code"] == "too_many_attempts"
        assert 0 < int(limited.headers["Retry-After"]) <= 3600
    # ... and no email ever went to an address without an account
    assert all(_inbox(stack, email, 0) == [] for email in unknown)


def test_no_reset_token_is_stored_or_logged(stack, new_user):
    user = new_user()
    tokens = [_reset_token(stack, user.email) for _ in range(2)]
    assert _confirm(stack, tokens[-1]).status_code == 204
    stored, logs = all_items(stack.aws_url), stack.logs()
    assert "RESET#" in stored or "RESETREQ#" in stored, "the scan found no reset items"
    for token in tokens:
        secret = token.partition(".")[2]
        assert secret not in stored, "a reset token is stored in clear"
        if stack.log_path is not None:
            assert secret not in logs, "a reset token is in the logs"
            assert len(logs) > 1000
