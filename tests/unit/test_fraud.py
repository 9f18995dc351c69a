"""Fraud screening, rule by rule, at each threshold's edge: amount limit, velocity (count in
10 minutes, amount in 24 hours), new card, risk flag."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cashew import clock
from cashew.accounts.velocity import History
from cashew.config import get_settings
from cashew.payments.fraud import Screening, screen

NOW = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)
DEFAULT_MAX = 500_000
DEFAULT_NEW_CARD = 200_000
DEFAULT_COUNT = 30
DEFAULT_DAY_AMOUNT = 2_000_000
NOW_MS = int(NOW.timestamp() * 1000)


def history(*attempts: tuple[timedelta, int, str]) -> History:
    """The payer's earlier attempts, each (how long ago, amount, currency)."""
    at = tuple(
        (NOW_MS - int(ago.total_seconds() * 1000), amount, currency)
        for ago, amount, currency in attempts
    )
    return History("usr_x", len(at), at, NOW_MS)


def times(n: int, ago: timedelta, amount: int = 100, currency: str = "USD"):
    return [(ago, amount, currency)] * n


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
    assert settings.fraud_max_payments_10min == DEFAULT_COUNT
    assert settings.fraud_max_amount_24h == DEFAULT_DAY_AMOUNT


def test_amount_equal_to_the_limit_is_not_blocked() -> None:
    result = screen(DEFAULT_MAX, "USD")
    assert not result.blocked
    assert result.fired == []
    assert result.risk().level == "normal"


def test_amount_one_above_the_limit_is_blocked() -> None:
    result = screen(DEFAULT_MAX + 1, "USD")
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
    assert screen(amount, "USD").blocked is blocked


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
    result = screen(DEFAULT_NEW_CARD + 1, "USD", card_added_at=added(ago))
    assert ("new_card_large_amount" in result.fired) is fires
    assert result.risk().level == ("elevated" if fires else "normal")
    assert not result.blocked


@pytest.mark.parametrize(
    ("amount", "fires"), [(DEFAULT_NEW_CARD, False), (DEFAULT_NEW_CARD + 1, True)]
)
def test_new_card_rule_at_the_large_amount_edge(amount: int, fires: bool) -> None:
    result = screen(amount, "USD", card_added_at=added(timedelta(minutes=5)))
    assert ("new_card_large_amount" in result.fired) is fires


def test_new_card_threshold_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, CASHEW_FRAUD_NEW_CARD_AMOUNT="100")
    assert screen(101, "USD", card_added_at=added(timedelta(minutes=5))).fired == [
        "new_card_large_amount"
    ]
    assert screen(100, "USD", card_added_at=added(timedelta(minutes=5))).fired == []


def test_without_a_card_the_new_card_rule_does_not_apply() -> None:
    assert screen(DEFAULT_NEW_CARD + 1, "USD", card_added_at=None).fired == []


# --- risk flag ------------------------------------------------------------------------------


def test_a_risk_flagged_card_is_elevated_but_not_blocked() -> None:
    result = screen(1_000, "USD", card_risk_flag=True)
    assert result.fired == ["card_risk_flag"]
    assert result.risk().level == "elevated"
    assert not result.blocked


def test_amount_over_the_limit_on_a_flagged_card_is_blocked_and_both_rules_are_named() -> None:
    result = screen(DEFAULT_MAX + 1, "USD", card_risk_flag=True)
    assert result.blocked
    assert set(result.fired) == {"max_amount", "card_risk_flag"}
    assert result.risk().score == 100  # capped


def test_an_ordinary_payment_scores_zero() -> None:
    result = screen(2_500, "USD", card_added_at=added(timedelta(days=3)), card_risk_flag=False)
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


# --- velocity: payments per payer in 10 minutes ---------------------------------------------


@pytest.mark.parametrize(("earlier", "fires"), [(DEFAULT_COUNT - 1, False), (DEFAULT_COUNT, True)])
def test_the_31st_attempt_in_10_minutes_is_blocked(earlier: int, fires: bool) -> None:
    result = screen(100, "USD", history=history(*times(earlier, timedelta(minutes=1))))
    assert ("velocity_count_10min" in result.fired) is fires
    assert result.blocked is fires


@pytest.mark.parametrize(
    ("ago", "counts"),
    [
        (timedelta(minutes=9, seconds=59, milliseconds=999), True),
        (timedelta(minutes=10), False),  # the window is the last 10 minutes, its start excluded
        (timedelta(hours=2), False),
    ],
)
def test_the_count_window_slides(ago: timedelta, counts: bool) -> None:
    earlier = [*times(DEFAULT_COUNT - 1, timedelta(minutes=1)), (ago, 100, "USD")]
    result = screen(100, "USD", history=history(*earlier))
    assert ("velocity_count_10min" in result.fired) is counts


def test_the_count_spans_currencies() -> None:
    earlier = times(15, timedelta(minutes=2), currency="EUR") + times(15, timedelta(minutes=2))
    assert "velocity_count_10min" in screen(100, "JPY", history=history(*earlier)).fired


def test_the_count_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, CASHEW_FRAUD_MAX_PAYMENTS_10MIN="2")
    assert screen(100, "USD", history=history(*times(1, timedelta(seconds=5)))).fired == []
    blocked = screen(100, "USD", history=history(*times(2, timedelta(seconds=5))))
    assert blocked.fired == ["velocity_count_10min"]


# --- velocity: amount per payer in 24 hours --------------------------------------------------


@pytest.mark.parametrize(("amount", "fires"), [(100_000, False), (100_001, True)])
def test_the_24h_amount_edge_includes_this_attempt(amount: int, fires: bool) -> None:
    # Given 1,900,000 already attempted today, spread so that the count rule stays quiet
    earlier = times(19, timedelta(hours=3), amount=100_000)
    result = screen(amount, "USD", history=history(*earlier))
    assert ("velocity_amount_24h" in result.fired) is fires
    assert result.blocked is fires


@pytest.mark.parametrize(
    ("ago", "counts"),
    [(timedelta(hours=23, minutes=59, seconds=59), True), (timedelta(hours=24), False)],
)
def test_the_amount_window_slides(ago: timedelta, counts: bool) -> None:
    result = screen(1, "USD", history=history((ago, DEFAULT_DAY_AMOUNT, "USD")))
    assert ("velocity_amount_24h" in result.fired) is counts


def test_the_amount_adds_up_per_currency() -> None:
    earlier = history((timedelta(hours=1), DEFAULT_DAY_AMOUNT, "EUR"))
    assert screen(1_000, "USD", history=earlier).fired == []
    assert screen(1_000, "EUR", history=earlier).fired == ["velocity_amount_24h"]


def test_the_amount_limit_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    configure(monkeypatch, CASHEW_FRAUD_MAX_AMOUNT_24H="500")
    earlier = history((timedelta(minutes=30), 400, "USD"))
    assert screen(100, "USD", history=earlier).fired == []
    assert screen(101, "USD", history=earlier).fired == ["velocity_amount_24h"]


def test_recording_an_attempt_forgets_those_over_a_day_old() -> None:
    earlier = history((timedelta(hours=25), 5, "USD"), (timedelta(hours=1), 7, "USD"))
    update = earlier.record_item(9, "USD")["Update"]
    values = update["ExpressionAttributeValues"]
    kept = [[int(n["N"]) if "N" in n else n["S"] for n in a["L"]] for a in values[":attempts"]["L"]]
    assert [a[1] for a in kept] == [7, 9]
    assert kept[-1] == [NOW_MS, 9, "USD"]
    assert values[":next"] == {"N": "3"} and values[":current"] == {"N": "2"}
    assert update["ConditionExpression"] == "#version = :current"


def test_the_first_attempt_is_recorded_only_if_nobody_recorded_one_meanwhile() -> None:
    update = History("usr_x", 0, (), NOW_MS).record_item(9, "USD")["Update"]
    assert update["ConditionExpression"] == "attribute_not_exists(#version)"
