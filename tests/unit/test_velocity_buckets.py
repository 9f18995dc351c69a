"""The payer's velocity history in per-minute buckets: the arithmetic, the window edges, and
the bound that keeps the VELOCITY item far below DynamoDB's 400 KB item limit."""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cashew import dynamo
from cashew.accounts import minute_buckets, store
from cashew.accounts.minute_buckets import KEPT_MINUTES, MinuteBucket, Tally
from cashew.accounts.velocity import History
from cashew.money import MAX_AMOUNT

CURRENCIES = ("USD", "EUR", "GBP", "JPY")
T0 = 29_000_000  # a minute (epoch minutes): 2025-02-20
ITEM_LIMIT = 400 * 1024
BOUND = 128 * 1024
"""What the VELOCITY item stays under: 128 KiB (131,072 bytes) by DynamoDB's size rules. The
fullest history an attempt a minute gives (1440 minutes x 4 currencies, amounts of the most
digits a payment has) measures 112,345 bytes; 9,999 attempts a minute in every currency for a
whole day, 129,621 bytes. Whatever the numbers (38 digits everywhere) it is 302,424 bytes,
still under 400 KB."""


def dynamodb_size(value: Any) -> int:
    """An item's or value's size by DynamoDB's documented rules, rounded up: a string its
    UTF-8 bytes, a number 1 byte per 2 significant digits plus 1, a list or map 3 bytes plus
    1 byte per element, and a map's names (like an item's) their UTF-8 bytes."""
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int | Decimal):
        digits = len(str(abs(value)).replace(".", "").strip("0") or "0")
        return (digits + 1) // 2 + 1 + (1 if value < 0 else 0)
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, list):
        return 3 + sum(1 + dynamodb_size(v) for v in value)
    if isinstance(value, dict):
        return 3 + sum(1 + len(k.encode()) + dynamodb_size(v) for k, v in value.items())
    raise TypeError(type(value))


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + dynamodb_size(v) for name, v in item.items())


def written_item(history: History, amount: int, currency: str) -> dict[str, Any]:
    """The VELOCITY item as `record_item`'s UpdateItem leaves it."""
    update = history.record_item(amount, currency)["Update"]
    values = dynamo.deserialize(update["ExpressionAttributeValues"])
    return {"pk": "USER#usr_x", "sk": "VELOCITY", "buckets": values[":buckets"], "version": 1}


# --- arithmetic ----------------------------------------------------------------------------


def test_attempts_of_one_minute_add_up_per_currency() -> None:
    buckets = minute_buckets.add((), T0, 100, "USD")
    buckets = minute_buckets.add(buckets, T0, 250, "USD")
    buckets = minute_buckets.add(buckets, T0, 7, "JPY")
    assert buckets == (MinuteBucket(T0, {"USD": Tally(2, 350), "JPY": Tally(1, 7)}),)
    assert buckets[0].count == 3
    assert (buckets[0].amount("USD"), buckets[0].amount("EUR")) == (350, 0)


def test_buckets_stay_oldest_first_whatever_order_attempts_come_in() -> None:
    buckets = minute_buckets.add((), T0 + 5, 1, "USD")
    buckets = minute_buckets.add(buckets, T0, 2, "USD")
    buckets = minute_buckets.add(buckets, T0 + 2, 3, "EUR")
    assert [b.minute for b in buckets] == [T0, T0 + 2, T0 + 5]


def test_a_minute_is_epoch_milliseconds_floored_to_60_000() -> None:
    assert minute_buckets.minute_of(T0 * 60_000) == T0
    assert minute_buckets.minute_of(T0 * 60_000 + 59_999) == T0
    assert minute_buckets.minute_of(T0 * 60_000 - 1) == T0 - 1


def test_the_window_is_this_minute_and_the_ones_before_it() -> None:
    buckets = tuple(MinuteBucket(T0 - back, {"USD": Tally(1, 10**back)}) for back in (10, 9, 1, 0))
    now = T0
    assert minute_buckets.count_within(buckets, now, 10) == 3  # T0-9 .. T0
    assert minute_buckets.count_within(buckets, now, 11) == 4
    assert minute_buckets.count_within(buckets, now, 1) == 1
    assert minute_buckets.amount_within(buckets, now, 10, "USD") == 10**9 + 10 + 1
    assert minute_buckets.amount_within(buckets, now, 10, "EUR") == 0


def test_recording_keeps_the_1440_minutes_ending_now() -> None:
    buckets = (
        MinuteBucket(T0 - KEPT_MINUTES, {"USD": Tally(1, 1)}),  # 24 h before this minute
        MinuteBucket(T0 - KEPT_MINUTES + 1, {"USD": Tally(1, 2)}),
    )
    recorded = minute_buckets.record(buckets, T0, 3, "USD")
    assert [b.minute for b in recorded] == [T0 - KEPT_MINUTES + 1, T0]


def test_a_bucket_another_clock_wrote_ahead_is_kept_and_bounds_what_is_kept() -> None:
    # Given a bucket written by an instance whose clock is 2 minutes ahead
    ahead = (MinuteBucket(T0 - KEPT_MINUTES + 2, {"USD": Tally(1, 1)}),)
    ahead += (MinuteBucket(T0 + 2, {"USD": Tally(1, 1)}),)
    # When this instance records an attempt
    recorded = minute_buckets.record(ahead, T0, 1, "USD")
    # Then the bucket ahead is in the window, and the history is still 1440 minutes long
    assert [b.minute for b in recorded] == [T0, T0 + 2]
    assert minute_buckets.count_within(recorded, T0, 10) == 2


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3 * KEPT_MINUTES),
            st.integers(1, MAX_AMOUNT),
            st.sampled_from(CURRENCIES),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_buckets_count_what_a_list_of_every_attempt_would(
    attempts: list[tuple[int, int, str]],
) -> None:
    # Given attempts recorded in the order of time
    attempts.sort(key=lambda a: a[0])
    buckets: tuple[MinuteBucket, ...] = ()
    for minute, amount, currency in attempts:
        buckets = minute_buckets.record(buckets, T0 + minute, amount, currency)
    # Then at the last attempt's minute, the windows hold what the full list says, at most
    # 1440 buckets are kept, each of one minute
    now = T0 + attempts[-1][0]
    for window in (1, 10, 600, KEPT_MINUTES):
        listed = [a for a in attempts if T0 + a[0] > now - window]
        assert minute_buckets.count_within(buckets, now, window) == len(listed)
        for currency in CURRENCIES:
            assert minute_buckets.amount_within(buckets, now, window, currency) == sum(
                amount for _, amount, cur in listed if cur == currency
            )
    assert len(buckets) <= KEPT_MINUTES
    assert len({b.minute for b in buckets}) == len(buckets)


# --- the bound -----------------------------------------------------------------------------


MEASURED_AT = (0, 700, KEPT_MINUTES - 1, KEPT_MINUTES + 7, 2 * KEPT_MINUTES - 1)
WIDEST_AMOUNT = MAX_AMOUNT - 1  # 99,999,999: 8 significant digits (10^8 has 1)


def test_the_item_stays_under_its_bound_however_many_attempts_in_every_currency() -> None:
    # Given a payer who attempts, for two days, every minute in each of the 4 currencies
    # (11,520 attempts, every one of an amount with the most digits a payment may have:
    # 99,999,999), and on top 500 more in each currency within one minute
    buckets: tuple[MinuteBucket, ...] = ()
    sizes, largest = [], 0
    for minute in range(2 * KEPT_MINUTES):
        burst = 500 if minute == KEPT_MINUTES + 7 else 1
        for currency, _ in itertools.product(CURRENCIES, range(burst)):
            buckets = minute_buckets.record(buckets, T0 + minute, WIDEST_AMOUNT, currency)
        if minute in MEASURED_AT:
            history = History("usr_x", 1, buckets, T0 + minute)
            sizes.append(item_size(written_item(history, WIDEST_AMOUNT, "USD")))
        largest = max(largest, len(buckets))
    # Then the history never holds more than 1440 buckets, and the item the write leaves
    # never grows past the bound, far below DynamoDB's limit
    assert largest == KEPT_MINUTES
    assert max(sizes) < BOUND < ITEM_LIMIT
    # ... and once the day is full, it grows no more (the burst's larger numbers aside)
    assert sizes[-1] <= sizes[-2] + 16


def test_a_day_of_9999_attempts_a_minute_in_every_currency_stays_under_the_bound() -> None:
    # Given every minute of the day with 9,999 attempts in each currency, of 99,999,999 each
    tally = Tally(9_999, 9_999 * WIDEST_AMOUNT)
    buckets = tuple(
        MinuteBucket(T0 + m, dict.fromkeys(CURRENCIES, tally)) for m in range(KEPT_MINUTES)
    )
    history = History("usr_x", 1, buckets, T0 + KEPT_MINUTES - 1)
    # Then the item the next attempt's write leaves is still under the bound
    assert item_size(written_item(history, WIDEST_AMOUNT, "USD")) < BOUND


def test_the_item_stays_under_400_kb_even_with_the_largest_numbers_dynamodb_holds() -> None:
    # Given every bucket full in every currency with 38-digit counts and amounts (no payer can
    # reach these: a count of attempts, an amount added up from at most 10^8 each)
    huge = 10**38 - 1
    buckets = tuple(
        MinuteBucket(T0 + m, {c: Tally(huge, huge) for c in CURRENCIES})
        for m in range(KEPT_MINUTES)
    )
    item = store.PayerAttempts("usr_x", 10**9, buckets).to_item()
    assert item_size(item) < ITEM_LIMIT


def test_the_size_rules_are_dynamodbs() -> None:
    # AWS's documented examples: a number of 1 to 2 significant digits takes 2 bytes, etc.
    assert [dynamodb_size(n) for n in (0, 7, 12, 123, 1_000, 10**38 - 1)] == [2, 2, 2, 3, 2, 20]
    assert dynamodb_size([]) == 3 and dynamodb_size({}) == 3
    assert dynamodb_size(["ab", 1]) == 3 + (1 + 2) + (1 + 2)
    assert item_size({"pk": "USER#u"}) == 2 + 6
