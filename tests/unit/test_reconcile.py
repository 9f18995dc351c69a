"""Reconciliation's selection, dispatch and bounds, with an in-memory index and fake steps
(no AWS): what a run asks the index for, which step each record goes to, and where it stops."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError

from cashew import clock
from cashew.config import get_settings
from cashew.errors import ConflictError, IdempotencyInProgressError
from cashew.gateways.base import GatewayOutcomeUnknownError
from cashew.gateways.sandbox import SandboxGateway
from cashew.payments import actions, idempotency, reconcile, resume
from cashew.payments import store as payments
from cashew.payments.idempotency import RESUMABLE
from cashew.payouts import face as payouts_face

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


class FakeIndex:
    """ReconcileIndex in memory: open records as (open_status, open_since, pk)."""

    def __init__(self, rows: list[tuple[str, datetime, str]]) -> None:
        self.rows = rows
        self.asked: list[tuple[str, str, int]] = []

    def due(self, open_status: str, before: str, limit: int) -> Iterator[str]:
        self.asked.append((open_status, before, limit))
        rows = sorted((since, pk) for s, since, pk in self.rows if s == open_status)
        yield from (pk for since, pk in rows if clock.rfc3339(since) <= before)


@pytest.fixture
def index(monkeypatch: pytest.MonkeyPatch) -> FakeIndex:
    s = get_settings()
    rows = [
        ("payment#processing", NOW - timedelta(seconds=s.reconcile_after + 1), "pay_stuck"),
        ("payment#processing", NOW - timedelta(seconds=s.reconcile_after - 60), "pay_recent"),
        ("refund#pending", NOW - timedelta(hours=1), "re_pending"),
        ("payment#requires_capture", NOW - timedelta(days=8), "pay_expired"),
        ("payment#requires_capture", NOW - timedelta(days=6), "pay_authorised"),
        ("payment#requires_action", NOW - timedelta(days=2), "pay_abandoned"),
        ("payment#requires_action", NOW - timedelta(hours=2), "pay_challenged"),
        (RESUMABLE, NOW - timedelta(seconds=s.reconcile_after + 1), "usr_A#died"),
        (RESUMABLE, NOW - timedelta(seconds=s.reconcile_after - 60), "usr_A#running"),
    ]
    fake = FakeIndex(rows)
    monkeypatch.setattr(payments, "due", fake.due)
    resumable = dataclasses.replace(reconcile.SWEEPS[RESUMABLE], due=fake.due)
    monkeypatch.setitem(reconcile.SWEEPS, RESUMABLE, resumable)
    return fake


def _steps(monkeypatch: pytest.MonkeyPatch, behaviour: dict[str, object]) -> list[str]:
    """Every row of SWEEPS with a fake step; `behaviour` per pk: True, False or an exception."""
    called: list[str] = []

    def step(pk: str) -> bool:
        called.append(pk)
        outcome = behaviour.get(pk, True)
        if isinstance(outcome, BaseException):
            raise outcome
        return bool(outcome)

    sweeps = {k: reconcile.Sweep(v.after, step, v.due) for k, v in reconcile.SWEEPS.items()}
    monkeypatch.setattr(reconcile, "SWEEPS", sweeps)
    return called


def test_a_run_takes_each_open_status_past_its_own_age_and_nothing_younger(
    index: FakeIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    called = _steps(monkeypatch, {})
    report = reconcile.run(now=NOW)
    assert sorted(called) == [
        "pay_abandoned", "pay_expired", "pay_stuck", "re_pending", "usr_A#died"
    ]  # fmt: skip
    s = get_settings()
    ages = {status: before for status, before, _ in index.asked}
    assert ages == {
        "payment#processing": clock.rfc3339(NOW - timedelta(seconds=s.reconcile_after)),
        "refund#pending": clock.rfc3339(NOW - timedelta(seconds=s.reconcile_after)),
        "payment#requires_capture": clock.rfc3339(NOW - timedelta(seconds=s.authorization_ttl)),
        "payment#requires_action": clock.rfc3339(NOW - timedelta(seconds=s.action_ttl)),
        RESUMABLE: clock.rfc3339(NOW - timedelta(seconds=s.reconcile_after)),
    }
    assert sum(report.settled.values()) == 5 and not report.bounded


def test_every_open_status_of_the_store_has_a_step_and_the_hooks_are_the_named_ones() -> None:
    statuses = {f"{kind}#{s}" for kind, open_ in payments.OPEN.items() for s in open_}
    assert set(reconcile.SWEEPS) | set(payouts_face.SWEEPS) == statuses | {RESUMABLE}
    steps = {k: v.settle for k, v in reconcile.SWEEPS.items()}
    assert steps == {
        "payment#processing": reconcile.settle_charge,
        "refund#pending": reconcile.settle_refund,
        "payment#requires_capture": reconcile.expire_authorisation,
        "payment#requires_action": actions.abandon,
        RESUMABLE: resume.resume,
    }
    # Requests are found in the idempotency table's ResumeIndex, the rest in ReconcileIndex
    dues = {k: v.due for k, v in (reconcile.SWEEPS | payouts_face.SWEEPS).items()}
    assert dues == {**dict.fromkeys(statuses), RESUMABLE: idempotency.due}


def test_raced_and_unanswered_records_are_left_and_aws_errors_counted_not_fatal(
    index: FakeIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = ClientError({"Error": {"Code": "InternalServerError", "Message": "x"}}, "GetItem")
    called = _steps(monkeypatch, {
        "pay_stuck": GatewayOutcomeUnknownError("timeout"),
        "re_pending": IdempotencyInProgressError("lease"),
        "pay_expired": error,
        "pay_abandoned": ConflictError("raced"),
        "usr_A#died": IdempotencyInProgressError("lease"),
    })  # fmt: skip
    report = reconcile.run(now=NOW)
    assert len(called) == 5  # a failure stops nothing
    assert report.left == {"payment#processing": 1, "refund#pending": 1,
                           "payment#requires_action": 1, RESUMABLE: 1}  # fmt: skip
    assert report.failed == {"payment#requires_capture": 1}
    assert not report.settled


def test_a_run_stops_at_its_item_limit(index: FakeIndex, monkeypatch: pytest.MonkeyPatch) -> None:
    called = _steps(monkeypatch, {})
    bounded = get_settings().model_copy(update={"reconcile_max_items": 2})
    monkeypatch.setattr(reconcile, "get_settings", lambda: bounded)
    report = reconcile.run(now=NOW)
    assert len(called) == 2 and report.seen == 2 and report.bounded
    assert all(limit <= 3 for _, _, limit in index.asked)  # pages no larger than needed


def test_a_run_stops_when_the_function_is_about_to_time_out(
    index: FakeIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    called = _steps(monkeypatch, {})
    remaining = iter([60_000, 60_000, reconcile.STOP_MARGIN_MS - 1])
    report = reconcile.run(lambda: next(remaining), now=NOW)
    assert len(called) == 2 and report.bounded


def test_the_requires_action_row_calls_its_hook(
    index: FakeIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the row pointed at another step (as the lead will point it at actions.abandon)
    abandoned: list[str] = []
    row = reconcile.Sweep(lambda s: s.action_ttl, lambda pk: abandoned.append(pk) or True)
    monkeypatch.setitem(reconcile.SWEEPS, "payment#requires_action", row)
    for other in ("payment#processing", "refund#pending", "payment#requires_capture"):
        monkeypatch.setitem(reconcile.SWEEPS, other, reconcile.Sweep(lambda s: 1, lambda pk: False))
    report = reconcile.run(now=NOW)
    assert abandoned == ["pay_abandoned"]
    assert report.settled == {"payment#requires_action": 1}


# --- what the sandbox answers when asked --------------------------------------------------


@pytest.mark.parametrize(("capture", "status"), [(True, "succeeded"), (False, "requires_capture")])
def test_the_sandbox_answers_how_a_processing_charge_ends(capture: bool, status: str) -> None:
    gateway = SandboxGateway()
    token = gateway.tokenise("4000000000003220", 12, 2030, "123").token
    charge = gateway.authorise(token, 700, "USD", idempotency_key="k", capture=capture, metadata={})
    assert charge.status == "processing" and charge.id is not None
    assert len(charge.id) == len("ch_sbx_") + 24
    again = gateway.authorise(token, 700, "USD", idempotency_key="k", capture=capture, metadata={})
    assert again.id == charge.id  # same key, same charge
    asked = SandboxGateway().retrieve_charge(charge.id)  # another instance: no state needed
    assert (asked.id, asked.status) == (charge.id, status)
    assert asked.amount_captured == (None if capture else 0)  # None: the whole amount
