"""Health, and the edge rules every API function shares."""

from __future__ import annotations


def test_health(stack):
    reply = stack.call("HealthFunction", "system/health.json")
    assert (reply.status, reply.body) == (200, {"status": "ok"})
    assert reply.headers["X-Request-Id"]


def test_body_over_64_kib_is_413(stack):
    reply = stack.call(
        "RegisterFunction", "accounts/register.json", raw_body='{"name": "' + "x" * 70_000 + '"}'
    )
    assert reply.status == 413
    assert reply.code == "payload_too_large"


def test_malformed_json_is_422(stack):
    reply = stack.call("RegisterFunction", "accounts/register.json", raw_body="{not json")
    assert reply.status == 422
    assert reply.code == "validation_error"
