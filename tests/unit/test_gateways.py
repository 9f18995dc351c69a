"""The sandbox gateway (API.md's card table) and the retry policy around any gateway."""

from __future__ import annotations

import pytest

from cashew import aws
from cashew.gateways import base, get_gateway
from cashew.gateways.base import Charge, GatewayUnavailableError, with_retries
from cashew.gateways.sandbox import SandboxGateway

APPROVED = ["4242424242424242", "5555555555554444", "4100000000000019"]
DECLINED = {
    "4000000000000002": "card_declined",
    "4000000000009995": "insufficient_funds",
    "4000000000000069": "expired_card",
}
UNAVAILABLE = "4000000000000119"
PROCESSING = "4000000000003220"
SANDBOX_TABLE = [*APPROVED, *DECLINED, UNAVAILABLE, PROCESSING]


@pytest.fixture
def gateway() -> SandboxGateway:
    return SandboxGateway()


def charge(
    gateway: SandboxGateway, number: str, *, key: str = "key-1", capture: bool = True
) -> Charge:
    token = gateway.tokenise(number, 12, 2030, "123").token
    return gateway.authorise(token, 2500, "USD", idempotency_key=key, capture=capture, metadata={})


def test_the_configured_gateway_is_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASHEW_GATEWAY_SECRET_ID", "cashew/gateway")
    monkeypatch.setattr(aws, "secret_json", lambda secret_id, max_age: {"webhook_secret": "w" * 64})
    assert isinstance(get_gateway(), SandboxGateway)


# --- tokenise -------------------------------------------------------------------------------


@pytest.mark.parametrize("number", SANDBOX_TABLE)
def test_every_card_of_the_table_tokenises_without_exposing_its_number(
    gateway: SandboxGateway, number: str
) -> None:
    # When the card is tokenised
    tokenised = gateway.tokenise(number, 12, 2030, "123")
    # Then the token carries neither the number nor any 8+ digit run of it, nor the cvc
    assert tokenised.token
    assert number not in tokenised.token
    assert number[-8:] not in tokenised.token
    assert number[:8] not in tokenised.token


@pytest.mark.parametrize("number", SANDBOX_TABLE)
def test_only_the_high_risk_card_has_the_risk_flag(gateway: SandboxGateway, number: str) -> None:
    assert gateway.tokenise(number, 12, 2030, "123").risk_flag is (number == "4100000000000019")


def test_tokenising_a_card_twice_gives_two_tokens(gateway: SandboxGateway) -> None:
    first = gateway.tokenise("4242424242424242", 12, 2030, "123").token
    second = gateway.tokenise("4242424242424242", 12, 2030, "123").token
    assert first != second


# --- charge ---------------------------------------------------------------------------------


@pytest.mark.parametrize("number", APPROVED)
@pytest.mark.parametrize(("capture", "status"), [(True, "succeeded"), (False, "requires_capture")])
def test_approved_cards(gateway: SandboxGateway, number: str, capture: bool, status: str) -> None:
    result = charge(gateway, number, capture=capture)
    assert result.status == status
    assert result.failure_code is None
    assert result.id is not None and result.id.startswith("ch_")


@pytest.mark.parametrize(("number", "code"), DECLINED.items())
@pytest.mark.parametrize("capture", [True, False])
def test_declined_cards_fail_with_their_code(
    gateway: SandboxGateway, number: str, code: str, capture: bool
) -> None:
    result = charge(gateway, number, capture=capture)
    assert result.status == "failed"
    assert result.failure_code == code
    assert result.failure_message


@pytest.mark.parametrize("capture", [True, False])
def test_the_processing_card_answers_later(gateway: SandboxGateway, capture: bool) -> None:
    result = charge(gateway, PROCESSING, capture=capture)
    assert result.status == "processing"
    assert result.failure_code is None
    assert result.id is not None


def test_the_error_card_raises_gateway_unavailable(gateway: SandboxGateway) -> None:
    with pytest.raises(GatewayUnavailableError):
        charge(gateway, UNAVAILABLE)


@pytest.mark.parametrize("number", [*APPROVED, *DECLINED, PROCESSING])
def test_same_idempotency_key_same_charge(gateway: SandboxGateway, number: str) -> None:
    token = gateway.tokenise(number, 12, 2030, "123").token
    first = gateway.authorise(token, 2500, "USD", idempotency_key="k", capture=True, metadata={})
    again = gateway.authorise(token, 2500, "USD", idempotency_key="k", capture=True, metadata={})
    other = gateway.authorise(token, 2500, "USD", idempotency_key="k2", capture=True, metadata={})
    assert again == first
    assert other.id != first.id


def test_charge_refuses_a_token_that_is_not_from_the_sandbox(gateway: SandboxGateway) -> None:
    with pytest.raises(ValueError, match="sandbox"):
        gateway.authorise(
            "4242424242424242", 100, "USD", idempotency_key="k", capture=True, metadata={}
        )


# --- with_retries ---------------------------------------------------------------------------


class FlakyGateway:
    """A call that fails with GatewayUnavailableError `failures` times, then succeeds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self) -> Charge:
        self.calls += 1
        if self.calls <= self.failures:
            raise GatewayUnavailableError("down")
        return Charge(id="ch_ok", status="succeeded")


@pytest.mark.parametrize("attempts", [1, 3, 5])
def test_retries_are_bounded_then_the_charge_fails_with_gateway_error(attempts: int) -> None:
    # Given a gateway that is always down
    call = FlakyGateway(failures=10**6)
    # When charging with retries
    result = with_retries(call, attempts=attempts, base_delay=0)
    # Then it was tried exactly `attempts` times and the outcome is a failed charge
    assert call.calls == attempts
    assert result.status == "failed"
    assert result.failure_code == "gateway_error"
    assert result.id is None


def test_success_on_the_second_attempt_is_returned() -> None:
    call = FlakyGateway(failures=1)
    result = with_retries(call, attempts=3, base_delay=0)
    assert result == Charge(id="ch_ok", status="succeeded")
    assert call.calls == 2


def test_success_on_the_last_attempt_is_returned() -> None:
    call = FlakyGateway(failures=2)
    assert with_retries(call, attempts=3, base_delay=0).status == "succeeded"
    assert call.calls == 3


def test_other_errors_are_not_retried() -> None:
    calls = []

    def broken() -> Charge:
        calls.append(1)
        raise ValueError("not a sandbox token")

    with pytest.raises(ValueError):
        with_retries(broken, attempts=3, base_delay=0)
    assert len(calls) == 1


def test_backoff_is_exponential_and_there_is_no_sleep_after_the_last_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slept: list[float] = []
    monkeypatch.setattr(base.time, "sleep", slept.append)
    with_retries(FlakyGateway(failures=10), attempts=4, base_delay=0.5)
    assert slept == [0.5, 1.0, 2.0]


def test_the_error_card_fails_with_gateway_error_after_bounded_retries(
    gateway: SandboxGateway,
) -> None:
    token = gateway.tokenise(UNAVAILABLE, 12, 2030, "123").token
    calls = 0

    def call() -> Charge:
        nonlocal calls
        calls += 1
        return gateway.authorise(token, 100, "USD", idempotency_key="k", capture=True, metadata={})

    result = with_retries(call, attempts=3, base_delay=0)
    assert (result.status, result.failure_code, calls) == ("failed", "gateway_error", 3)
