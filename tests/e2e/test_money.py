"""Money over HTTP: concurrency, idempotency and the contract's error format."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from tests.e2e.conftest import add_card, balance, pay, top_up, wait_for_entries


def test_15_concurrent_payments_of_100_from_1000_exactly_10_succeed(stack, new_user):
    # Given a payer whose balance is 1000
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 1_000)
    # When 15 payments of 100 race over HTTP, each with its own key
    with ThreadPoolExecutor(max_workers=15) as pool:
        replies = list(pool.map(lambda _: pay(stack, payer, payee.id, 100), range(15)))
    # Then every request is answered, exactly 10 succeed, and the balance is exactly 0
    assert {r.status_code for r in replies} == {201}
    outcomes = sorted(r.json()["status"] for r in replies)
    assert outcomes.count("succeeded") == 10
    assert outcomes.count("failed") == 5
    assert {r.json()["failure_code"] for r in replies if r.json()["status"] == "failed"} == {
        "insufficient_funds"
    }
    assert balance(stack, payer) == 0
    assert balance(stack, payee) == 1_000


def test_same_key_8_times_in_parallel_has_one_effect(stack, new_user):
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 1_000)
    key = str(uuid.uuid4())
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda _: pay(stack, payer, payee.id, 250, key), range(8)))
    answered = [r for r in replies if r.status_code == 201]
    assert all(r.status_code in (201, 409) for r in replies)
    assert answered, "at least the first request succeeds"
    assert len({r.json()["id"] for r in answered}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") != "true" for r in answered) == 1
    assert balance(stack, payer) == 750
    assert balance(stack, payee) == 250
    assert len(wait_for_entries(stack, payee.token, type="payment")) == 1


def test_replay_returns_the_first_response_with_the_replayed_header(stack, new_user):
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 1_000)
    key = str(uuid.uuid4())
    first = pay(stack, payer, payee.id, 100, key, description="rent")
    again = pay(stack, payer, payee.id, 100, key, description="rent")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert balance(stack, payer) == 900


def test_same_key_different_body_is_422(stack, new_user):
    payer, payee = new_user(), new_user()
    top_up(stack, payer, add_card(stack, payer), 1_000)
    key = str(uuid.uuid4())
    assert pay(stack, payer, payee.id, 100, key).status_code == 201
    reused = pay(stack, payer, payee.id, 200, key)
    assert reused.status_code == 422
    assert reused.headers["Content-Type"] == "application/problem+json"
    assert reused.json()["code"] == "idempotency_key_reused"
    assert balance(stack, payer) == 900


def test_errors_are_problem_json_with_a_request_id(stack, new_user):
    user = new_user()
    cases = [
        (stack.request("GET", "/v1/users/me"), 401, "unauthenticated"),
        (stack.request("GET", "/v1/users/me", "not-a-token"), 401, "unauthenticated"),
        (
            stack.request(
                "POST",
                "/v1/payments",
                user.token,
                json={
                    "amount": 1,
                    "currency": "USD",
                    "payee_id": user.id,
                    "source": {"type": "balance"},
                },
            ),
            400,
            "idempotency_key_missing",
        ),
        (pay(stack, user, user.id, 10.0), 422, "validation_error"),
        (pay(stack, user, user.id, 100, colour="blue"), 422, "validation_error"),
        (stack.request("POST", "/v1/users", data="x" * 70_000), 413, "payload_too_large"),
    ]
    for reply, status, code in cases:
        assert reply.status_code == status, (status, reply.text)
        assert reply.headers["Content-Type"].startswith("application/problem+json")
        body = reply.json()
        assert (body["status"], body["code"]) == (status, code)
        assert body["type"] == f"https://cashew.dev/errors/{code}"
        assert reply.headers["X-Request-Id"]
        assert body["request_id"] == reply.headers["X-Request-Id"]


def test_public_routes(stack):
    health = stack.request("GET", "/v1/health")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert health.headers["X-Request-Id"]
    jwks = stack.request("GET", "/.well-known/jwks.json").json()
    assert jwks["keys"] and all(k["kty"] == "OKP" and "d" not in k for k in jwks["keys"])
