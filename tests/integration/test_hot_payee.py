"""A hot payee (CASHEW_HOT_PAYEES): its payments' credits spread over credit shards, which its
own debits (payments, refunds, payouts) empty into its main balance item, against the
embedded endpoint. Conservation under any sequence is the money machines' (both run with every
member hot); here: the shards, the races and the refusals."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from cashew import dynamo
from cashew.accounts import face as accounts
from cashew.accounts import store
from cashew.config import get_settings
from cashew.errors import ConflictError, NotFoundError, RateLimitedError
from cashew.identity import Caller
from cashew.payments import create
from cashew.payments.models import PaymentRequest
from tests.integration.conftest import add_card, balance, pay, top_up

SHARDS = 4


@pytest.fixture
def hot(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[str]]:
    """The set of hot payees: add a user's id to make them one."""
    chosen: set[str] = set()

    def hot_now() -> None:
        monkeypatch.setenv("CASHEW_HOT_PAYEES", ",".join(sorted(chosen)))
        monkeypatch.setenv("CASHEW_HOT_PAYEE_SHARDS", str(SHARDS))
        get_settings.cache_clear()

    class Chosen(set[str]):
        def add(self, user_id: str) -> None:
            super().add(user_id)
            hot_now()

    chosen = Chosen()
    yield chosen
    monkeypatch.undo()
    get_settings.cache_clear()


def _request(payee_id: str, amount: int) -> PaymentRequest:
    return PaymentRequest.model_validate(
        {"amount": amount, "currency": "USD", "payee_id": payee_id, "source": {"type": "balance"}}
    )


def test_a_hot_payees_credits_spread_over_shards_and_read_as_one_balance(stack, new_user, hot):
    # Given a hot merchant and a payer with 2,000
    merchant, payer = new_user("Merchant"), new_user()
    hot.add(merchant.id)
    top_up(stack, payer, add_card(stack, payer), 2_000)
    # When the payer makes 20 payments of 100 to it, 10 at a time
    caller = Caller(payer.id, payer.session_id, "user")
    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(
            pool.map(
                lambda i: create.create_payment(caller, _request(merchant.id, 100), f"hot-{i}"),
                range(20),
            )
        )
    # Then every payment succeeds; the credits are on several shards, none on the main item
    assert [r.model.status for r in results] == ["succeeded"] * 20
    held = accounts.held(merchant.id, "USD")
    assert held.main == 0 and len(held.shards) >= 2, held
    assert set(held.shards) <= set(range(SHARDS))
    # and every reader sees one balance: the sum
    assert held.total == 2_000
    assert balance(stack, merchant) == 2_000
    assert balance(stack, payer) == 0


def test_a_hot_payees_debit_takes_its_shards_money_and_never_overdraws(stack, new_user, hot):
    # Given a hot merchant holding 1,000, all of it in its credit shards
    merchant, payer, supplier = new_user("Merchant"), new_user(), new_user("Supplier")
    hot.add(merchant.id)
    top_up(stack, payer, add_card(stack, payer), 1_000)
    for _ in range(10):
        assert pay(stack, payer, merchant.id, 100).status == 201
    assert accounts.held(merchant.id, "USD").main == 0
    # When it makes 15 payments of 100 at once (stale reads of its shards race each other),
    # each retried with its key while the answer is "busy"
    caller = Caller(merchant.id, merchant.session_id, "user")

    def paid(i: int) -> str:
        for _ in range(50):  # a busy answer moved nothing: the client retries
            try:
                return create.create_payment(
                    caller, _request(supplier.id, 100), f"spend-{i}"
                ).model.status
            except ConflictError:
                continue
        raise AssertionError("still busy after 50 tries")

    with ThreadPoolExecutor(max_workers=15) as pool:
        statuses = sorted(pool.map(paid, range(15)))
    # Then exactly 10 succeed, the other 5 find too little, and no item is below zero
    assert statuses == ["failed"] * 5 + ["succeeded"] * 10
    held = accounts.held(merchant.id, "USD")
    assert held.total == 0 and min([held.main, *held.shards.values()]) == 0, held
    assert balance(stack, supplier) == 1_000


def _paid_300(stack, new_user, hot, merchant) -> store.Held:
    """The merchant made hot and paid 100 three times: 300 in its shards, none in its main
    item; its balance's items as read."""
    payer = new_user()
    hot.add(merchant.id)
    top_up(stack, payer, add_card(stack, payer), 300)
    for _ in range(3):
        assert pay(stack, payer, merchant.id, 100).status == 201
    seen = accounts.held(merchant.id, "USD")
    assert (seen.main, seen.total) == (0, 300)
    return seen


def test_a_gathering_on_a_stale_view_of_the_shards_moves_nothing(stack, new_user, hot):
    # Given a hot merchant with 300 in its shards
    merchant = new_user("Merchant")
    seen = _paid_300(stack, new_user, hot, merchant)
    # When another debit gathers the shards' money and takes it, after they were seen
    accounts.gather(merchant.id, "USD", 300, seen)
    assert accounts.held(merchant.id, "USD") == store.Held(300, dict.fromkeys(seen.shards, 0))
    accounts.debit(merchant.id, "USD", 300).write()
    # Then a gathering on the stale view moves nothing, and the debit fails on the main item
    accounts.gather(merchant.id, "USD", 200, seen)
    assert accounts.held(merchant.id, "USD") == store.Held(0, dict.fromkeys(seen.shards, 0))
    with pytest.raises(dynamo.TransactionCanceled) as caught:
        accounts.debit(merchant.id, "USD", 200).write()
    assert accounts.debit_failed(caught.value)


def test_a_refusal_rests_on_the_shards_read_first_not_on_a_torn_query(
    stack, new_user, hot, monkeypatch
):
    # Given a hot merchant with 300 in its credit shards and nothing in its main item
    merchant, supplier = new_user("Merchant"), new_user("Supplier")
    seen = _paid_300(stack, new_user, hot, merchant)
    # When every Query sees a move half applied (the shards emptied, the main item not yet
    # credited: a Query is only read-committed against a transaction)
    torn = store.Held(0, dict.fromkeys(seen.shards, 0))
    query = store._held_query
    monkeypatch.setattr(  # the main item and its shards, torn; the shards alone, as they are
        store,
        "_held_query",
        lambda u, c, prefix: torn if prefix == "BALANCE#USD" else query(u, c, prefix),
    )
    # Then a read for a debit of 250 confirms the shortfall, shards then main item: 300
    assert accounts.held(merchant.id, "USD").total == 0  # no amount: the Query as it is
    assert accounts.held(merchant.id, "USD", at_least=250) == seen
    # and the merchant's payment of 250 succeeds, not failed for want of money
    caller = Caller(merchant.id, merchant.session_id, "user")
    outcome = create.create_payment(caller, _request(supplier.id, 250), "torn-read")
    assert outcome.model.status == "succeeded"
    monkeypatch.undo()
    get_settings.cache_clear()
    assert accounts.held(merchant.id, "USD").total == 50
    assert balance(stack, supplier) == 250


def test_a_payment_to_an_unknown_hot_payee_is_404_and_moves_nothing(stack, new_user, hot):
    # Given a hot payee id that is no user's (a configuration naming a user yet to register)
    payer = new_user()
    hot.add("usr_00000000000000000000000000")
    top_up(stack, payer, add_card(stack, payer), 500)
    # When the payer pays it
    reply = pay(stack, payer, "usr_00000000000000000000000000", 100)
    # Then 404, and the payer keeps the money
    assert (reply.status, reply.code) == (404, "not_found"), reply.body
    assert balance(stack, payer) == 500
    with pytest.raises(NotFoundError):
        accounts.payee_check("usr_00000000000000000000000000")


def test_a_hot_payees_payment_transaction_holds_no_profile_check(stack, new_user, hot):
    # Given a hot merchant (its existence read once, not held by every payment's transaction)
    merchant, payer = new_user("Merchant"), new_user()
    hot.add(merchant.id)
    top_up(stack, payer, add_card(stack, payer), 100)
    assert accounts.payee_check(merchant.id) is None
    # When a payment is made to it, then the transaction names no payee check and a shard credit
    caller = Caller(payer.id, payer.session_id, "user")
    operation = create.BalancePayment(caller, _request(merchant.id, 100), None)  # type: ignore[arg-type]
    operation.admit()
    commit = operation.commit(None)
    assert "payee" not in commit.items.names
    assert (
        create.create_payment(caller, _request(merchant.id, 100), "one").model.status == "succeeded"
    )
    assert accounts.held(merchant.id, "USD").main == 0


def test_a_hot_payees_whole_balance_is_paid_out_after_its_shards_are_gathered(stack, new_user, hot):
    # Given a hot merchant with 300 in its shards and a card to be paid out to
    from tests.integration.test_payouts import payout

    merchant = new_user("Merchant")
    seen = _paid_300(stack, new_user, hot, merchant)
    card = add_card(stack, merchant)
    # When it pays out all of it
    paid = payout(stack, merchant, 300, card)
    # Then the payout is paid, the shards were emptied into the main item and it is all gone
    assert (paid.status, paid.body["status"]) == (201, "paid"), paid.body
    assert accounts.held(merchant.id, "USD") == store.Held(0, dict.fromkeys(seen.shards, 0))


def test_a_refund_by_a_payee_hot_before_gathers_its_shards_and_succeeds(
    stack, new_user, hot, monkeypatch
):
    # Given a merchant paid while hot (300 in its shards), then no longer named hot
    merchant = new_user("Merchant")
    _paid_300(stack, new_user, hot, merchant)
    payments_made = stack.call(
        "ListPaymentsFunction", "payments/list_payments.json",
        authorizer=merchant.authorizer, query={"role": "payee"},
    ).body["data"]  # fmt: skip
    monkeypatch.setenv("CASHEW_HOT_PAYEES", "")
    get_settings.cache_clear()

    def refund(payment: dict[str, Any], amount: int) -> Any:
        return stack.call("CreateRefundFunction", "payments/create_refund.json",
            authorizer=merchant.authorizer, path={"id": payment["id"]},
            body={"amount": amount}, headers={"Idempotency-Key": str(uuid.uuid4())})  # fmt: skip

    # When it refunds a payment while its main item holds nothing, then another
    first, second = refund(payments_made[0], 100), refund(payments_made[1], 100)
    # Then its shards' money is gathered and both succeed at once (no "retry" answer)
    assert (first.status, first.body["status"]) == (201, "succeeded"), first.body
    assert (second.status, second.body["status"]) == (201, "succeeded"), second.body
    assert accounts.held(merchant.id, "USD").total == 100


def test_a_busy_gathering_leaves_no_refund_or_payout_stuck(stack, new_user, hot, monkeypatch):
    # Given a hot merchant with 300 in its shards, a payout of 100 made, and shards that
    # then stay busy (throttled, or contended past every retry)
    from tests.integration.test_payouts import payout

    merchant = new_user("Merchant")
    _paid_300(stack, new_user, hot, merchant)
    card = add_card(stack, merchant)
    paid_out = payout(stack, merchant, 100, card, key="payout-1")
    assert (paid_out.status, paid_out.body["status"]) == (201, "paid")
    paid = stack.call("ListPaymentsFunction", "payments/list_payments.json",
        authorizer=merchant.authorizer, query={"role": "payee"}).body["data"]  # fmt: skip

    def busy(*_: Any) -> None:
        raise RateLimitedError("too many requests for this account; retry shortly")

    def refund() -> Any:
        return stack.call("CreateRefundFunction", "payments/create_refund.json",
            authorizer=merchant.authorizer, path={"id": paid[0]["id"]},
            body={"amount": 100}, headers={"Idempotency-Key": "refund-1"})  # fmt: skip

    with monkeypatch.context() as busy_now:
        busy_now.setattr(accounts, "gather", busy)
        # When the payout is retried with its key, and a refund needs the shards' money
        replayed, refused = payout(stack, merchant, 100, card, key="payout-1"), refund()
    # Then the payout's retry is answered by its record, and the refund is a 429 that left
    # no record behind: its retry with the same key, the shards free again, succeeds
    assert (replayed.status, replayed.body) == (201, paid_out.body)
    assert refused.status == 429, refused.body
    again = refund()
    assert (again.status, again.body["status"]) == (201, "succeeded"), again.body
    assert accounts.held(merchant.id, "USD").total == 100


def test_a_payout_admitted_for_a_record_gone_by_then_pays_nothing(
    stack, new_user, hot, monkeypatch
):
    # Given a hot merchant with 300 in its shards, busy shards, and a payout request whose
    # key seemed to have a record when admitted, gone (expired, or abandoned) by the time the
    # request's own record is written
    from cashew.payments import idempotency
    from cashew.payouts import create as payouts_create
    from tests.integration.test_payouts import payout

    merchant = new_user("Merchant")
    _paid_300(stack, new_user, hot, merchant)
    card = add_card(stack, merchant)

    class _RecordSeen:
        def __getattr__(self, name: str) -> Any:
            return getattr(idempotency, name)

        @staticmethod
        def get(scope: Any) -> Any:
            return object()

    def busy(*_: Any) -> None:
        raise ConflictError("the account is busy; retry the request")

    with monkeypatch.context() as then:
        then.setattr(accounts, "gather", busy)
        then.setattr(payouts_create, "idempotency", _RecordSeen())
        # When it is answered
        refused = payout(stack, merchant, 100, card, key="gone-1")
    # Then it is a 409 that paid nothing and left no record: its retry pays out
    assert (refused.status, refused.body["code"]) == (409, "conflict"), refused.body
    assert accounts.held(merchant.id, "USD").total == 300
    again = payout(stack, merchant, 100, card, key="gone-1")
    assert (again.status, again.body["status"]) == (201, "paid"), again.body
    assert accounts.held(merchant.id, "USD").total == 200
