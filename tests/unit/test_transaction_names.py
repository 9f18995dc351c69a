"""Transaction items are named, and their order changes no outcome (cashew.dynamo).

On moto in-process (no sockets): a cancellation reason is attributed to the item that failed
whatever the order the items were added in, and the money operations give the same outcome
when their transactions are written in any order."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from moto import mock_aws

from cashew import aws, dynamo, ids
from cashew.accounts import velocity
from cashew.errors import CashewError
from cashew.identity import Caller
from cashew.payments import after_create, create
from cashew.payments.models import PaymentRequest, RefundRequest

TABLES = {"test-accounts": ("pk", "sk"), "test-payments": ("pk",), "test-idempotency": ("pk",)}


@pytest.fixture
def tables(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Given the accounts, payments and idempotency tables, empty, on moto."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        aws.reset()
        client = aws.dynamodb()
        for table, keys in TABLES.items():
            client.create_table(
                TableName=table,
                KeySchema=[
                    {"AttributeName": k, "KeyType": t}
                    for k, t in zip(keys, ("HASH", "RANGE"), strict=False)
                ],
                AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in keys],
                BillingMode="PAY_PER_REQUEST",
            )
        yield client
        aws.reset()


def _put(table: str, key: dict[str, str]) -> dynamo.Write:
    return dynamo.put(table, {**key, "n": 1})


def _must_exist(table: str, key: dict[str, str]) -> dynamo.Write:
    return dynamo.check(table, key, "attribute_exists(pk)")


def test_the_item_builders_write_what_transact_write_items_takes():
    assert dynamo.update(
        "t", {"pk": "a"}, "SET #s = :s", condition="#s <> :s", names={"#s": "status"},
        values={":s": "x"},
    ) == {"Update": {
        "TableName": "t", "Key": {"pk": {"S": "a"}}, "UpdateExpression": "SET #s = :s",
        "ConditionExpression": "#s <> :s", "ExpressionAttributeNames": {"#s": "status"},
        "ExpressionAttributeValues": {":s": {"S": "x"}},
    }}  # fmt: skip
    assert dynamo.put("t", {"pk": "a", "n": 1}) == {
        "Put": {"TableName": "t", "Item": {"pk": {"S": "a"}, "n": {"N": "1"}}}
    }
    assert dynamo.check("t", {"pk": "a"}, "attribute_exists(pk)") == {
        "ConditionCheck": {
            "TableName": "t", "Key": {"pk": {"S": "a"}},
            "ConditionExpression": "attribute_exists(pk)",
        }
    }  # fmt: skip
    assert dynamo.delete("t", {"pk": "a"}, condition="v = :v", values={":v": 2}) == {
        "Delete": {
            "TableName": "t", "Key": {"pk": {"S": "a"}}, "ConditionExpression": "v = :v",
            "ExpressionAttributeValues": {":v": {"N": "2"}},
        }
    }  # fmt: skip


@pytest.mark.parametrize("order", list(itertools.permutations(["first", "missing", "last"])))
def test_a_cancellation_is_read_by_name_whatever_the_order(tables, order):
    # Given a transaction of three items, one of which checks an item that does not exist
    items = {
        "first": _put("test-payments", {"pk": "a"}),
        "missing": _must_exist("test-payments", {"pk": "nobody"}),
        "last": _put("test-payments", {"pk": "b"}),
    }
    tx = dynamo.Transaction()
    for name in order:  # added in this order
        tx.add(name, items[name])
    # When it is written
    with pytest.raises(dynamo.TransactionCanceled) as caught:
        tx.write()
    # Then the failure is the missing item's, by name, and nothing was written
    assert caught.value.failed("missing")
    assert not caught.value.failed("first") and not caught.value.failed("last")
    assert caught.value.failed("first", "missing")
    assert "Item" not in tables.get_item(TableName="test-payments", Key={"pk": {"S": "a"}})


def test_a_name_the_transaction_does_not_hold_is_an_error_not_a_false(tables):
    tx = dynamo.Transaction().add("missing", _must_exist("test-payments", {"pk": "nobody"}))
    with pytest.raises(dynamo.TransactionCanceled) as caught:
        tx.write()
    with pytest.raises(ValueError, match="not in the transaction"):
        caught.value.failed("debit")
    with pytest.raises(ValueError, match="already in the transaction"):
        tx.add("missing", _put("test-payments", {"pk": "a"}))


# --------------------------------------------- money operations, items in shuffled order


def _in_order(monkeypatch: pytest.MonkeyPatch, seed: int | None) -> None:
    """Every transaction is written with its items in an order drawn from `seed` (None:
    the order they were added in)."""
    if seed is None:
        return
    rng = random.Random(seed)
    write = dynamo.Transaction.write

    def shuffled(self: dynamo.Transaction) -> None:
        names = list(self.names)
        rng.shuffle(names)
        self._items = {name: self._items[name] for name in names}
        write(self)

    monkeypatch.setattr(dynamo.Transaction, "write", shuffled)


def _user(tables: Any, available: int) -> Caller:
    user_id = ids.new_id("usr")
    for sk, extra in (("PROFILE", {}), ("BALANCE#USD", {"available": {"N": str(available)}})):
        item = {"pk": {"S": f"USER#{user_id}"}, "sk": {"S": sk}, **extra}
        tables.put_item(TableName="test-accounts", Item=item)
    return Caller(user_id, "ses_1", "user")


def _balance(tables: Any, caller: Caller) -> int:
    key = {"pk": {"S": f"USER#{caller.user_id}"}, "sk": {"S": "BALANCE#USD"}}
    return int(tables.get_item(TableName="test-accounts", Key=key)["Item"]["available"]["N"])


def _pay(payer: Caller, payee_id: str, amount: int, key: str) -> Any:
    request = PaymentRequest.model_validate(
        {"amount": amount, "currency": "USD", "payee_id": payee_id, "source": {"type": "balance"}}
    )
    return create.create_payment(payer, request, key)


def _seen(call: Callable[[], Any]) -> tuple[Any, ...]:
    """What a client sees of a call: the answer's fields that do not vary by run, or the
    error."""
    try:
        outcome = call()
    except CashewError as error:
        return (type(error).__name__, error.detail)
    model = outcome.model
    return (outcome.created, outcome.replayed, model.status, getattr(model, "failure_code", None))


def _scenario(tables: Any, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Balance payments and refunds exercising every named failure they read."""
    payer, payee = _user(tables, 1_000), _user(tables, 0)
    seen = [
        _seen(lambda: _pay(payer, payee.user_id, 300, "ok")),
        _seen(lambda: _pay(payer, payee.user_id, 300, "ok")),  # replayed
        _seen(lambda: _pay(payer, payee.user_id, 5_000, "low")),  # debit fails
        _seen(lambda: _pay(payer, ids.new_id("usr"), 100, "nobody")),  # payee fails
    ]
    # the payer's history changes between screening and writing once: admitted again
    read, stale = velocity.read, {"left": 1}

    def read_stale(user_id: str) -> velocity.History:
        history = read(user_id)
        if stale["left"]:
            stale["left"] -= 1
            return velocity.History(user_id, history.version - 1, (), history.now_minute)
        return history

    monkeypatch.setattr(velocity, "read", read_stale)
    seen.append(_seen(lambda: _pay(payer, payee.user_id, 100, "raced")))
    monkeypatch.setattr(velocity, "read", read)
    # a refund the payee cannot afford any more (debit fails), then one that it can
    paid = _pay(payer, payee.user_id, 200, "to-refund").model
    _pay(payee, payer.user_id, 550, "drain")
    refund = RefundRequest(amount=100)
    seen.append(_seen(lambda: after_create.refund(payee, paid.id, refund, "refund-low")))
    seen.append(_seen(lambda: after_create.refund(payee, paid.id, RefundRequest(amount=50), "r")))
    seen.append((_balance(tables, payer), _balance(tables, payee)))
    return seen


@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_the_order_of_transaction_items_changes_no_outcome(tables, monkeypatch, seed):
    # Given the same operations run once with items in the order they are added
    expected = _scenario(tables, monkeypatch)
    # When they are run again with every transaction's items in another order
    _in_order(monkeypatch, seed)
    shuffled = _scenario(tables, monkeypatch)
    # Then every answer, error and balance is the same
    assert shuffled == expected
    assert expected[2][2:] == ("failed", "insufficient_funds")
    assert expected[3][0] == "NotFoundError" and expected[4][2] == "succeeded"
    assert expected[5] == ("ConflictError", "the payee's balance is too low for this refund")
    assert expected[-1] == (1_000 - 300 - 100 - 200 + 550 + 50, 300 + 100 + 200 - 550 - 50)


def test_a_builder_leaves_the_mappings_it_is_given_as_they_were() -> None:
    # Given a key and condition values a caller keeps using after building an item
    key = {"pk": "USER#u", "sk": "BALANCE#USD"}
    values = {":amount": 5}
    names = {"#a": "available"}
    # When two items are built from them
    first = dynamo.update(
        "t", key, "SET #a = #a - :amount", condition="#a >= :amount", names=names, values=values
    )
    second = dynamo.check("t", key, condition="attribute_exists(pk)")
    # Then each carries only its own condition, and the caller's mappings are unchanged
    assert "ExpressionAttributeValues" not in second["ConditionCheck"]
    assert first["Update"]["ConditionExpression"] == "#a >= :amount"
    assert (key, values, names) == (
        {"pk": "USER#u", "sk": "BALANCE#USD"},
        {":amount": 5},
        {"#a": "available"},
    )
