"""`with_retries` for any gateway call: bounded attempts with exponential backoff, a caller's
failure value after the last refusal, and an unknown outcome that is never turned into a
failure."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cashew.gateways import base
from cashew.gateways.base import (
    GATEWAY_ERROR_CHARGE,
    GatewayOutcomeUnknownError,
    GatewayRefund,
    GatewayUnavailableError,
    with_retries,
)

REFUSED = GatewayUnavailableError("connection refused")
UNKNOWN = GatewayOutcomeUnknownError("read timeout")
REFUND = GatewayRefund(id="re_1", status="succeeded")
REFUND_FAILED = GatewayRefund(id=None, status="failed", failure_code="gateway_error")


def scripted[T](*answers: T | Exception) -> tuple[Callable[[], T], list[int]]:
    """A call answering each of `answers` in turn (raising the exceptions)."""
    calls: list[int] = []

    def call() -> T:
        calls.append(1)
        answer = answers[min(len(calls), len(answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return call, calls


def test_any_result_type_is_returned_as_soon_as_an_attempt_answers() -> None:
    call, calls = scripted(REFUSED, REFUND)
    assert with_retries(call, attempts=3, failure=REFUND_FAILED, base_delay=0) == REFUND
    assert len(calls) == 2


@pytest.mark.parametrize("attempts", [1, 2, 5])
def test_after_the_last_refusal_the_callers_failure_value_is_returned(attempts: int) -> None:
    call, calls = scripted(REFUSED)
    assert with_retries(call, attempts=attempts, failure=REFUND_FAILED, base_delay=0) is (
        REFUND_FAILED
    )
    assert len(calls) == attempts


def test_a_none_failure_value_is_allowed() -> None:
    call, _ = scripted(REFUSED)
    assert with_retries(call, attempts=2, failure=None, base_delay=0) is None


def test_charges_fail_with_gateway_error_by_default() -> None:
    call, _ = scripted(REFUSED)
    assert with_retries(call, attempts=2, base_delay=0) is GATEWAY_ERROR_CHARGE
    assert GATEWAY_ERROR_CHARGE.failure_code == "gateway_error"
    assert GATEWAY_ERROR_CHARGE.id is None


def test_an_unknown_last_attempt_propagates() -> None:
    call, calls = scripted(REFUSED, UNKNOWN)
    with pytest.raises(GatewayOutcomeUnknownError):
        with_retries(call, attempts=2, failure=REFUND_FAILED, base_delay=0)
    assert len(calls) == 2


def test_an_unknown_outcome_is_not_settled_by_a_later_refusal() -> None:
    # Given a first attempt that may have been processed, then attempts that never got through
    call, calls = scripted(UNKNOWN, REFUSED, REFUSED)
    # Then the outcome is still unknown, never the failure value
    with pytest.raises(GatewayOutcomeUnknownError):
        with_retries(call, attempts=3, failure=REFUND_FAILED, base_delay=0)
    assert len(calls) == 3


def test_an_unknown_outcome_is_settled_by_a_later_answer() -> None:
    call, _ = scripted(UNKNOWN, REFUND)
    assert with_retries(call, attempts=3, failure=REFUND_FAILED, base_delay=0) == REFUND


def test_other_errors_propagate_without_a_retry() -> None:
    call, calls = scripted(ValueError("not a sandbox charge"))
    with pytest.raises(ValueError):
        with_retries(call, attempts=3, failure=REFUND_FAILED, base_delay=0)
    assert len(calls) == 1


def test_the_backoff_doubles_and_the_budget_bounds_the_whole_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a clock that advances only when sleeping
    clock = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(base.time, "sleep", sleep)
    monkeypatch.setattr(base.time, "monotonic", lambda: clock[0])
    call, calls = scripted(REFUSED)
    # When retrying up to 5 times with a 3.5 s budget
    result = with_retries(call, attempts=5, failure=REFUND_FAILED, base_delay=0.5, budget=3.5)
    # Then it backs off 0.5, 1, 2 (3.5 s) and stops before a 4 s wait would exceed the budget
    assert result is REFUND_FAILED
    assert slept == [0.5, 1.0, 2.0]
    assert len(calls) == 4
