"""Fraud screening rules that need no history (amount limit, new card, risk flag)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cashew import clock
from cashew.config import get_settings
from cashew.payments.fraud import Screening, screen

NOW = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)
DEFAULT_MAX = 500_000
DEFAULT_NEW_CARD = 200_000


@pytest.fixture(autouse=True)
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: NOW)


def added(ago: timedelta) -> str:
    return clock.rfc3339(NOW - ago)


def configure(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


# --- amount limit ---------------------------------------------------------------------------


def test_defaults_are_those_of_the_contract() -> None:
    settings = get_settings()
    assert settings.fraud_max_amount == DEFAULT_MAX
    assert settings.fraud_new_card_amount == DEFAULT_NEW_CARD


def test_amount_equal_to_the_limit_is_not_blocked() -> None:
    result = screen(DEFAULT_MAX)
    assert not result.blocked
    assert result.fired == []
    assert result.risk().level == "normal"


def test_amount_one_above_the_limit_is_blocked() -> None:
    result = screen(DEFAULT_MAX + 1)
    assert result.blocked
    assert result.fired == ["max_amount"]
    assert result.risk().level == "blocked"
    assert result.risk().score == 100


@pytest.mark.parametrize(("amount", "blocked"), [(1_000, False), (1_001, True)])
def test_the_limit_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, amount: int, blocked: bool
) -> None:
    # Given a per-transaction limit of 1000
    configure(monkeypatch, CASHEW_FRAUD_MAX_AMOUNT="1000")
    # Then 1000 passes and 1001 is blocked
    assert screen(amount).blocked is blocked


# --- new card -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ago", "fires"),
    [
        (timedelta(seconds=1), True),
        (timedelta(minutes=59, seconds=59), True),
        (timedelta(hours=1), False),  # "less than an hour ago"
        (timedelta(hours=1, seconds=1), False),
        (timedelta(days=30), False),
    ],
)
def test_new_card_rule_at_the_one_hour_edge(ago: timedelta, fires: bool) -> None:
    result = screen(DEFAULT_NEW_CARD + 1, card_added_at=added(ago))
    assert ("new_card_large_amount" in result.fired) is fires
    assert result.risk().level == ("elevated" if fires else "normal")
    assert not result.blocked


@pytest.mark.parametrize(
    ("amount", "fires"), [(DEFAULT_NEW_CARD, False), (DEFAULT_NEW_CARD + 1, True)]
)
def test_new_card_rule_at_the_large_amount_edge(amount: int, fires: bool) -> None:
    result = screen(amount, card_added_at=added(timedelta(minutes=5)))
    assert ("new_card_large_amount" in result.fired) is fires


def test_new_card_threshold_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, CASHEW_FRAUD_NEW_CARD_AMOUNT="100")
    assert screen(101, card_added_at=added(timedelta(minutes=5))).fired == ["new_card_large_amount"]
    assert screen(100, card_added_at=added(timedelta(minutes=5))).fired == []


def test_without_a_card_the_new_card_rule_does_not_apply() -> None:
    assert screen(DEFAULT_NEW_CARD + 1, card_added_at=None).fired == []


# --- risk flag ------------------------------------------------------------------------------


def test_a_risk_flagged_card_is_elevated_but_not_blocked() -> None:
    result = screen(1_000, card_risk_flag=True)
    assert result.fired == ["card_risk_flag"]
    assert result.risk().level == "elevated"
    assert not result.blocked


def test_amount_over_the_limit_on_a_flagged_card_is_blocked_and_both_rules_are_named() -> None:
    result = screen(DEFAULT_MAX + 1, card_risk_flag=True)
    assert result.blocked
    assert set(result.fired) == {"max_amount", "card_risk_flag"}
    assert result.risk().score == 100  # capped


def test_an_ordinary_payment_scores_zero() -> None:
    result = screen(2_500, card_added_at=added(timedelta(days=3)), card_risk_flag=False)
    assert (result.score, result.fired, result.risk().level) == (0, [], "normal")


# --- levels ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("score", "level", "shown"),
    [
        (0, "normal", 0),
        (49, "normal", 49),
        (50, "elevated", 50),
        (99, "elevated", 99),
        (100, "blocked", 100),
        (160, "blocked", 100),
    ],
)
def test_risk_levels(score: int, level: str, shown: int) -> None:
    risk = Screening(score=score).risk()
    assert (risk.level, risk.score) == (level, shown)
    assert Screening(score=score).blocked is (level == "blocked")
