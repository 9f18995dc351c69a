"""Fraud screening, rule by rule, at each threshold's edge: amount limit, velocity (count in
10 minutes, amount in 24 hours), new card, risk flag."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from cashew import clock, dynamo
from cashew.accounts import minute_buckets
from cashew.accounts.velocity import History
from cashew.config import get_settings
from cashew.payments.fraud import Screening, screen
from cashew.payments.models import Risk

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
    return History("usr_x", len(at), minute_buckets.from_attempts(at), NOW_MS // 60_000)


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
    for currency in ("USD", "EUR", "GBP", "JPY"):
        assert settings.fraud_max_amount[currency] == DEFAULT_MAX
        assert settings.fraud_new_card_amount[currency] == DEFAULT_NEW_CARD
        assert settings.fraud_max_amount_24h[currency] == DEFAULT_DAY_AMOUNT
    assert settings.fraud_max_payments_10min == DEFAULT_COUNT
    assert settings.fraud_block_risky_cards is True


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


def test_a_risk_flagged_card_is_blocked_by_default() -> None:
    # (this test said "elevated but not blocked" before CASHEW_FRAUD_BLOCK_RISKY_CARDS)
    result = screen(1_000, "USD", card_risk_flag=True)
    assert result.fired == ["card_risk_flag"]
    assert result.risk() == Risk(score=100, level="blocked")
    assert result.blocked


@pytest.mark.parametrize(
    ("value", "blocked"), [("false", False), ("true", True), ("0", False), ("1", True)]
)
def test_the_risk_flag_blocks_unless_the_setting_is_false(
    monkeypatch: pytest.MonkeyPatch, value: str, blocked: bool
) -> None:
    configure(monkeypatch, CASHEW_FRAUD_BLOCK_RISKY_CARDS=value)
    result = screen(1_000, "USD", card_risk_flag=True)
    assert result.fired == ["card_risk_flag"]
    assert result.blocked is blocked
    assert result.risk() == (
        Risk(score=100, level="blocked") if blocked else Risk(score=60, level="elevated")
    )


def test_a_card_without_the_flag_is_not_blocked_by_the_setting() -> None:
    assert screen(1_000, "USD", card_risk_flag=False).fired == []


def test_amount_over_the_limit_on_a_flagged_card_is_blocked_and_both_rules_are_named() -> None:
    result = screen(DEFAULT_MAX + 1, "USD", card_risk_flag=True)
    assert result.blocked
    assert set(result.fired) == {"max_amount", "card_risk_flag"}
    assert result.risk().score == 100  # capped


def test_a_flagged_new_card_is_blocked_with_the_flag_off_only_if_over_a_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given risky cards only elevated: flag (60) and new card (50) add up to a block
    configure(monkeypatch, CASHEW_FRAUD_BLOCK_RISKY_CARDS="false")
    new = added(timedelta(minutes=5))
    both = screen(DEFAULT_NEW_CARD + 1, "USD", card_added_at=new, card_risk_flag=True)
    assert (both.fired, both.blocked) == (["card_risk_flag", "new_card_large_amount"], True)
    flag_only = screen(DEFAULT_NEW_CARD, "USD", card_added_at=new, card_risk_flag=True)
    assert (flag_only.fired, flag_only.risk().level) == (["card_risk_flag"], "elevated")


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


def at(hour: int, minute: int, second: int = 0, ms: int = 0) -> datetime:
    return datetime(2026, 11, 30, hour, minute, second, ms * 1000, tzinfo=UTC)


def history_at(now: datetime, *attempts: tuple[datetime, int, str]) -> History:
    """The payer's earlier attempts at these instants, read at `now`."""
    ms = tuple((int(t.timestamp() * 1000), amount, cur) for t, amount, cur in attempts)
    return History("usr_x", len(ms), minute_buckets.from_attempts(ms), int(now.timestamp()) // 60)


# The windows are whole minutes: at 09:30:xx the 10-minute window is 09:21:00.000 to now.
@pytest.mark.parametrize(
    ("now", "earlier", "counts"),
    [
        (at(9, 30), at(9, 21), True),  # 9 minutes ago, in minute 09:21
        (at(9, 30), at(9, 20, 59, 999), False),  # 9 min 0.001 s ago, but in minute 09:20
        (at(9, 30, 59, 999), at(9, 21), True),  # 9 min 59.999 s ago, in minute 09:21
        (at(9, 30, 59, 999), at(9, 20, 59, 999), False),  # 10 minutes ago
        (at(9, 30), at(9, 20), False),
        (at(9, 30), at(7, 30), False),
        (at(9, 30), at(9, 30, 30), True),  # a little later than now (another clock)
    ],
)
def test_the_count_window_is_this_minute_and_the_9_before(
    monkeypatch: pytest.MonkeyPatch, now: datetime, earlier: datetime, counts: bool
) -> None:
    monkeypatch.setattr(clock, "now", lambda: now)
    recent = [(now - timedelta(seconds=1), 100, "USD")] * (DEFAULT_COUNT - 1)
    result = screen(100, "USD", history=history_at(now, *recent, (earlier, 100, "USD")))
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


# The 24-hour window: at 09:30:xx, from 09:31:00.000 the day before (1440 minutes) to now.
@pytest.mark.parametrize(
    ("now", "earlier", "counts"),
    [
        (at(9, 30), at(9, 31) - timedelta(days=1), True),  # 23 h 59 min ago
        (
            at(9, 30),
            at(9, 30, 59, 999) - timedelta(days=1),
            False,
        ),  # in minute 09:30 of the day before
        (at(9, 30, 59, 999), at(9, 31) - timedelta(days=1), True),  # 23 h 59 min 59.999 s ago
        (at(9, 30), at(9, 30) - timedelta(days=1), False),  # 24 h ago
        (at(9, 30), at(9, 29, 59), True),
    ],
)
def test_the_amount_window_is_this_minute_and_the_1439_before(
    monkeypatch: pytest.MonkeyPatch, now: datetime, earlier: datetime, counts: bool
) -> None:
    monkeypatch.setattr(clock, "now", lambda: now)
    result = screen(1, "USD", history=history_at(now, (earlier, DEFAULT_DAY_AMOUNT, "USD")))
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


def test_recording_an_attempt_forgets_the_buckets_over_a_day_old() -> None:
    earlier = history(
        (timedelta(hours=24), 5, "USD"),  # minute 09:30 of the day before: out of every window
        (timedelta(hours=23, minutes=59), 6, "USD"),  # minute 09:31 the day before: kept
        (timedelta(hours=1), 7, "EUR"),
        (timedelta(hours=1), 8, "EUR"),
    )
    update = earlier.record_item(9, "USD")["Update"]
    values = dynamo.deserialize(update["ExpressionAttributeValues"])
    minute = NOW_MS // 60_000
    assert values[":buckets"] == [
        [minute - 1439, {"USD": [1, 6]}],
        [minute - 60, {"EUR": [2, 15]}],
        [minute, {"USD": [1, 9]}],
    ]
    assert values[":next"] == 5 and values[":current"] == 4
    assert update["UpdateExpression"] == "SET buckets = :buckets, #version = :next REMOVE attempts"
    assert update["ConditionExpression"] == "#version = :current"


def test_the_first_attempt_is_recorded_only_if_nobody_recorded_one_meanwhile() -> None:
    update = History("usr_x", 0, (), NOW_MS).record_item(9, "USD")["Update"]
    assert update["ConditionExpression"] == "attribute_not_exists(#version)"


# --- thresholds per currency -----------------------------------------------------------------

PER_CURRENCY = "USD=500000,JPY=50000,EUR=400000"
# What each amount rule allows per currency with PER_CURRENCY; GBP is not named: the default.
ALLOWED = {"USD": 500_000, "JPY": 50_000, "EUR": 400_000}


def _max_amount(amount: int, currency: str) -> Screening:
    return screen(amount, currency)


def _day_amount(amount: int, currency: str) -> Screening:
    earlier = history((timedelta(hours=2), amount // 2, currency))
    return screen(amount - amount // 2, currency, history=earlier)


def _new_card(amount: int, currency: str) -> Screening:
    return screen(amount, currency, card_added_at=added(timedelta(minutes=5)))


@pytest.mark.parametrize(
    ("variable", "rule", "attempt", "default"),
    [
        ("CASHEW_FRAUD_MAX_AMOUNT", "max_amount", _max_amount, DEFAULT_MAX),
        ("CASHEW_FRAUD_MAX_AMOUNT_24H", "velocity_amount_24h", _day_amount, DEFAULT_DAY_AMOUNT),
        ("CASHEW_FRAUD_NEW_CARD_AMOUNT", "new_card_large_amount", _new_card, DEFAULT_NEW_CARD),
    ],
    ids=["max_amount", "amount_24h", "new_card"],
)
@pytest.mark.parametrize("currency", ["USD", "JPY", "EUR", "GBP"])
def test_each_amount_rule_fires_above_its_currencys_threshold(
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    rule: str,
    attempt: Callable[[int, str], Screening],
    default: int,
    currency: str,
) -> None:
    # Given a per-currency value of the setting (GBP not named: the documented default)
    configure(monkeypatch, **{variable: PER_CURRENCY})
    threshold = ALLOWED.get(currency, default)
    # Then the currency's own threshold is allowed, and one minor unit more fires the rule
    assert rule not in attempt(threshold - 1, currency).fired
    assert rule not in attempt(threshold, currency).fired
    assert rule in attempt(threshold + 1, currency).fired


@pytest.mark.parametrize("currency", ["USD", "JPY", "EUR", "GBP"])
def test_a_bare_number_is_the_threshold_of_every_currency(
    monkeypatch: pytest.MonkeyPatch, currency: str
) -> None:
    configure(monkeypatch, CASHEW_FRAUD_MAX_AMOUNT="7000")
    assert screen(7_000, currency).fired == []
    assert screen(7_001, currency).fired == ["max_amount"]


def test_a_jpy_amount_over_its_limit_is_blocked_while_the_same_usd_amount_passes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configure(monkeypatch, CASHEW_FRAUD_MAX_AMOUNT=PER_CURRENCY)
    assert screen(60_000, "USD").fired == []
    jpy = screen(60_000, "JPY")
    assert (jpy.fired, jpy.risk().level) == (["max_amount"], "blocked")
