"""A hot payee's credit shards (cashew.accounts.store): which shard a credit goes to, the
shard's key, and the debit that empties shards into the main item, moving money only."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from cashew import dynamo
from cashew.accounts import face, store
from cashew.config import get_settings

HOT, OTHER_HOT, COLD = (f"usr_{c * 26}" for c in "HOC")


def _update(write: dynamo.Write) -> tuple[str, dict[str, Any]]:
    """(sort key, expression values) of a transaction's Update item."""
    update = write["Update"]
    key = dynamo.deserialize(update["Key"])
    return str(key["sk"]), dynamo.deserialize(update.get("ExpressionAttributeValues", {}))


def test_a_credit_goes_to_the_same_shard_for_the_same_payment_and_spreads_over_all() -> None:
    shards = [store.credit_shard(f"pay_{i}", 32) for i in range(3_200)]
    assert shards[:50] == [store.credit_shard(f"pay_{i}", 32) for i in range(50)]
    counts = Counter(shards)
    assert set(counts) == set(range(32))
    assert max(counts.values()) < 2 * 3_200 / 32  # none takes twice its share


def test_a_shards_key_sorts_with_its_balance_and_reads_back() -> None:
    shard = store.StoredBalance("usr_1", "EUR", 700, 7)
    item = shard.to_item()
    assert item["sk"] == "BALANCE#EUR#07"
    assert item["sk"].startswith("BALANCE#EUR")
    assert store.StoredBalance.from_item(item) == shard
    assert store.StoredBalance("usr_1", "EUR", 5).to_item()["sk"] == "BALANCE#EUR"


@pytest.mark.parametrize(
    "sk",
    [
        "BALANCE#EUR#7",
        "BALANCE#EUR#x1",
        "BALANCE#EUR#007",
        "BALANCE#EUR#\u0660\u0663",
        "BALANCE#EUR#90",
    ],
)
def test_a_malformed_shard_key_is_not_read_as_a_balance(sk: str) -> None:
    with pytest.raises(ValueError, match="not a credit shard"):
        store.StoredBalance.from_item({"pk": "USER#u", "sk": sk, "currency": "EUR", "available": 1})


def test_an_item_whose_currency_is_not_its_keys_is_not_read() -> None:
    with pytest.raises(ValueError, match="currency"):
        store.StoredBalance.from_item(
            {"pk": "USER#u", "sk": "BALANCE#EUR#01", "currency": "USD", "available": 1}
        )


def test_a_hot_payee_gets_shard_credits_and_others_the_main_item(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CASHEW_HOT_PAYEES", f"{HOT}, {OTHER_HOT}")
    monkeypatch.setenv("CASHEW_HOT_PAYEE_SHARDS", "8")
    get_settings.cache_clear()
    sk, _ = _update(face.credit_item(HOT, "USD", 5, spread_by="pay_1"))
    assert sk == f"BALANCE#USD#{store.credit_shard('pay_1', 8):02d}"
    assert _update(face.credit_item(COLD, "USD", 5, spread_by="pay_1"))[0] == "BALANCE#USD"
    # a credit with nothing to spread it by (a refund's back to its payer) stays on the main item
    assert _update(face.credit_item(HOT, "USD", 5))[0] == "BALANCE#USD"


@pytest.mark.parametrize(
    "value",
    [
        f"{HOT},usr 2",
        f"{HOT};{OTHER_HOT}",
        HOT.lower(),  # a typo would leave the payee cold without a word
        HOT + "0",
        ",".join(f"usr_{i:026d}" for i in range(51)),  # more than the environment holds
    ],
)
def test_a_malformed_hot_payee_list_fails_the_settings(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CASHEW_HOT_PAYEES", value)
    with pytest.raises(ValidationError):
        get_settings()


@pytest.mark.parametrize("shards", ["1", "91"])
def test_the_shard_count_is_bounded(monkeypatch: pytest.MonkeyPatch, shards: str) -> None:
    monkeypatch.setenv("CASHEW_HOT_PAYEE_SHARDS", shards)
    with pytest.raises(ValidationError):
        get_settings()


held_balances = st.builds(
    store.Held,
    main=st.integers(0, 10_000),
    shards=st.dictionaries(st.integers(0, 31), st.integers(0, 10_000), max_size=8),
)


@given(held_balances, st.integers(1, 50_000))
def test_a_gathering_moves_the_fullest_shards_it_needs_and_no_more(
    seen: store.Held, amount: int
) -> None:
    plan = store.gather_plan(seen, amount)
    if seen.main >= amount or seen.total < amount:
        assert plan == []  # the main item covers it, or the debit fails as it must
        return
    # each shard as it was seen, fullest first, until the main item covers the debit
    assert all(seen.shards[shard] == held for shard, held in plan)
    assert [held for _, held in plan] == sorted((held for _, held in plan), reverse=True)
    gathered = seen.main + sum(held for _, held in plan)
    assert gathered >= amount
    assert gathered - plan[-1][1] < amount  # one shard fewer would not do
    left = [held for shard, held in seen.shards.items() if shard not in dict(plan)]
    assert all(held <= plan[-1][1] for held in left)


def test_a_gathering_move_empties_one_shard_into_the_main_item() -> None:
    shard, main = store.gather_items(HOT, "USD", 7, 250)._items.values()
    assert _update(shard) == ("BALANCE#USD#07", {":amount": 250})
    assert shard["Update"]["ConditionExpression"] == "available >= :amount"
    assert _update(main) == ("BALANCE#USD", {":amount": 250, ":currency": "USD"})
    assert "ConditionExpression" not in main["Update"]


class _Main:
    """Answers the GetItem of the main balance item from `values`, one per read."""

    def __init__(self, *values: int) -> None:
        self.values = list(values)

    def get_item(self, **params: Any) -> dict[str, Any]:
        assert params["ConsistentRead"] and params["ProjectionExpression"] == "pk, sk, available"
        return {"Item": dynamo.serialize({"available": self.values.pop(0)})}


def _reads(monkeypatch: pytest.MonkeyPatch, main: _Main, *shard_reads: dict[int, int]) -> None:
    """The shards' Queries answer `shard_reads` in turn, the main item's GetItems `main`."""
    left = list(shard_reads)

    def query(user_id: str, currency: str, prefix: str) -> store.Held:
        return store.Held(0, left.pop(0))

    monkeypatch.setattr(store, "_held_query", query)
    monkeypatch.setattr(store.aws, "dynamodb", lambda: main)
    monkeypatch.setattr(store, "_table", lambda: "accounts")


def test_a_shortfall_is_judged_again_when_a_shard_grew_during_the_reads(monkeypatch) -> None:
    # the Query saw the shards torn; then 100 + 100 and a main item of 0: too little for 250;
    # but the shards read again hold 100 + 150 (a credit landed), so the main item is read
    # again and the balance of 250 suffices
    main = _Main(0, 0)
    _reads(monkeypatch, main, {0: 100, 1: 100}, {0: 100, 1: 150}, {0: 100, 1: 150})
    monkeypatch.setattr(store, "_held_query", _first_torn(store._held_query))
    assert store.held(HOT, "USD", at_least=250) == store.Held(0, {0: 100, 1: 150})
    assert main.values == []  # read twice


def test_a_shortfall_stands_when_no_shard_grew(monkeypatch) -> None:
    main = _Main(0)
    _reads(monkeypatch, main, {0: 100, 1: 100}, {0: 100, 1: 0})  # (a gathering emptied one)
    monkeypatch.setattr(store, "_held_query", _first_torn(store._held_query))
    assert store.held(HOT, "USD", at_least=250) == store.Held(0, {0: 100, 1: 100})


def _first_torn(shards_query: Any) -> Any:
    """The Query of all the items torn (shards seen emptied); the shards' own, as given."""

    def query(user_id: str, currency: str, prefix: str) -> store.Held:
        if prefix == "BALANCE#USD":
            return store.Held(0, {0: 0, 1: 0})
        return shards_query(user_id, currency, prefix)

    return query
