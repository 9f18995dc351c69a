"""Idempotency scoping and the decision taken on an existing record."""

from __future__ import annotations

from typing import Any

import pytest

from cashew import clock, dynamo
from cashew.errors import IdempotencyInProgressError, IdempotencyKeyReusedError
from cashew.payments import idempotency
from cashew.payments.idempotency import IdempotencyRecord, Replay, check, scope

ALICE = "usr_01JCQ3F6Z4V8T2K9M1N5P7R3S6"
BOB = "usr_01JCQ3H1J3K5M7N9P1Q3R5S7T9"
KEY = "b3e4f5a6-7c8d-4e9f-a0b1-c2d3e4f5a6b7"
BODY = {"amount": 2500, "currency": "USD", "source": {"type": "balance"}}


# --- scope ----------------------------------------------------------------------------------


def test_same_request_same_hash() -> None:
    assert scope(ALICE, KEY, "payment", BODY) == scope(ALICE, KEY, "payment", dict(BODY))


def test_key_order_of_the_body_does_not_matter() -> None:
    reordered = {"source": {"type": "balance"}, "currency": "USD", "amount": 2500}
    assert scope(ALICE, KEY, "payment", reordered).request_hash == (
        scope(ALICE, KEY, "payment", BODY).request_hash
    )


@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("payment", {**BODY, "amount": 2501}),
        ("payment", {**BODY, "currency": "EUR"}),
        ("payment", {**BODY, "description": "Dinner"}),
        ("payment", {**BODY, "source": {"type": "card", "payment_method_id": "pm_x"}}),
        ("payment", {**BODY, "amount": "2500"}),
        ("top_up", BODY),
        ("refund", BODY),
    ],
)
def test_a_different_body_or_operation_gives_a_different_hash(
    operation: str, body: dict[str, Any]
) -> None:
    assert scope(ALICE, KEY, operation, body).request_hash != (
        scope(ALICE, KEY, "payment", BODY).request_hash
    )


def test_keys_are_scoped_to_the_caller() -> None:
    # Given two users who happen to choose the same key for the same request
    alice = scope(ALICE, KEY, "payment", BODY)
    bob = scope(BOB, KEY, "payment", BODY)
    # Then their records and the key the gateway sees are distinct
    assert alice.pk != bob.pk
    assert alice.gateway_key != bob.gateway_key


def test_the_gateway_key_is_stable_and_opaque() -> None:
    s = scope(ALICE, KEY, "payment", BODY)
    assert s.gateway_key == scope(ALICE, KEY, "payment", {**BODY, "amount": 1}).gateway_key
    assert KEY not in s.gateway_key and ALICE not in s.gateway_key
    assert s.gateway_key != scope(ALICE, KEY + "x", "payment", BODY).gateway_key


# --- check ----------------------------------------------------------------------------------


def record(s: idempotency.Scope, **fields: Any) -> IdempotencyRecord:
    return IdempotencyRecord.from_item({
        "pk": s.pk, "request_hash": s.request_hash, "payment_id": "pay_1",
        "created_at": "2026-11-30T10:00:00.000Z", "expires_at": 1_800_000_000, **fields,
    })  # fmt: skip


def test_completed_record_of_the_same_request_is_replayed() -> None:
    s = scope(ALICE, KEY, "payment", BODY)
    completed = record(s, status="completed", status_code=201, response_body='{"id":"pay_1"}')
    assert check(s, completed) == Replay(status_code=201, body='{"id":"pay_1"}')


def test_completed_failure_is_replayed_too() -> None:
    s = scope(ALICE, KEY, "payment", BODY)
    failed = record(s, status="completed", status_code=201, response_body='{"status":"failed"}')
    assert check(s, failed) == Replay(status_code=201, body='{"status":"failed"}')


@pytest.mark.parametrize("status", ["completed", "in_progress"])
def test_the_same_key_with_a_different_request_is_refused(status: str) -> None:
    first = scope(ALICE, KEY, "payment", BODY)
    second = scope(ALICE, KEY, "payment", {**BODY, "amount": 9999})
    existing = record(first, status=status, status_code=201, response_body="{}")
    with pytest.raises(IdempotencyKeyReusedError) as caught:
        check(second, existing)
    assert (caught.value.status, caught.value.code) == (422, "idempotency_key_reused")


def test_in_progress_record_of_the_same_request_is_not_a_replay() -> None:
    s = scope(ALICE, KEY, "payment", BODY)
    assert check(s, record(s, status="in_progress")) is None


# --- replay_existing (with an in-memory record store) ----------------------------------------


@pytest.mark.parametrize(
    "stored",
    [None, {"status": "in_progress"}],
    ids=["record-gone", "in-progress"],
)
def test_losing_the_race_to_a_running_request_is_409(
    monkeypatch: pytest.MonkeyPatch, stored: dict[str, Any] | None
) -> None:
    s = scope(ALICE, KEY, "payment", BODY)
    monkeypatch.setattr(
        idempotency, "get", lambda _: None if stored is None else record(s, **stored)
    )
    with pytest.raises(IdempotencyInProgressError) as caught:
        idempotency.replay_existing(s)
    assert (caught.value.status, caught.value.code) == (409, "idempotency_in_progress")


def test_losing_the_race_to_a_completed_request_replays_it(monkeypatch: pytest.MonkeyPatch) -> None:
    s = scope(ALICE, KEY, "payment", BODY)
    done = record(s, status="completed", status_code=201, response_body="{}")
    monkeypatch.setattr(idempotency, "get", lambda _: done)
    assert idempotency.replay_existing(s) == Replay(201, "{}")


# --- records live at least 24 h -------------------------------------------------------------


def test_a_completed_record_is_kept_at_least_24_hours() -> None:
    s = scope(ALICE, KEY, "payment", BODY)
    before = clock.epoch()
    put = idempotency.completed_item(s, "pay_1", 201, "{}")["Put"]
    item = dynamo.deserialize(put["Item"])
    assert item["expires_at"] >= before + 24 * 3600
    assert item["pk"] == s.pk and item["status"] == "completed"
    assert put["ConditionExpression"] == "attribute_not_exists(pk)"
    assert put["TableName"] == "test-idempotency"
