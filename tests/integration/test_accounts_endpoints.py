"""Profile updates, payment-method reads and deletes, and per-currency balances: each handler
with its events/ sample (and variations) against the embedded endpoint."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.integration.conftest import add_card, call_with_id
from tests.support.lambda_runtime import Reply

RESPONSE_FIELDS = {
    "id", "type", "card", "billing_name", "status", "default", "last_used_at", "created_at",
}  # fmt: skip
TOKEN_FIELDS = {"token_ciphertext", "token_nonce", "token_data_key"}


def patch_me(stack, user, body: Any = None, **kw: Any) -> Reply:
    return stack.call(
        "UpdateMeFunction", "accounts/update_me.json", authorizer=user.authorizer, body=body, **kw
    )


def list_methods(stack, user, **query: str) -> Reply:
    return stack.call(
        "ListPaymentMethodsFunction",
        "accounts/list_payment_methods.json",
        authorizer=user.authorizer,
        query=query or None,
    )


def get_method(stack, user, method_id: str) -> Reply:
    return call_with_id(
        stack,
        "GetPaymentMethodFunction",
        "accounts/get_payment_method.json",
        method_id,
        authorizer=user.authorizer,
    )


def delete_method(stack, user, method_id: str) -> Reply:
    return call_with_id(
        stack,
        "DeletePaymentMethodFunction",
        "accounts/delete_payment_method.json",
        method_id,
        authorizer=user.authorizer,
    )


def stored(stack, user_id: str, sk: str) -> dict[str, Any] | None:
    item: dict[str, Any] | None = (
        stack.clients("dynamodb")
        .get_item(
            TableName=stack.env["CASHEW_ACCOUNTS_TABLE"],
            Key={"pk": {"S": f"USER#{user_id}"}, "sk": {"S": sk}},
            ConsistentRead=True,
        )
        .get("Item")
    )
    return item


def without_request_id(problem: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in problem.items() if k != "request_id"}


# --- PATCH /v1/users/me --------------------------------------------------------------------


def test_patch_with_the_sample_changes_name_phone_and_one_setting(stack, new_user):
    # Given a user with the default settings
    user = new_user("Ada")
    # When they PATCH with the sample body (name, phone, settings.default_currency = GBP)
    updated = patch_me(stack, user)
    # Then the updated user comes back: the given setting changed, the other one kept
    assert updated.status == 200, updated.body
    assert updated.body == {
        "id": user.id,
        "email": user.email,
        "email_verified": False,
        "name": "Ada King",
        "phone": "+447700900123",
        "role": "user",
        "settings": {"default_currency": "GBP", "notify_email": True},
        "mfa_enabled": False,
        "created_at": updated.body["created_at"],
    }
    # And GET /v1/users/me shows the same
    me = stack.call("GetMeFunction", "accounts/get_me.json", authorizer=user.authorizer)
    assert me.body == updated.body


def test_partial_settings_and_clearing_the_phone_keep_everything_else(stack, new_user):
    # Given a user who has set a name, a phone and a default currency
    user = new_user("Ada")
    assert patch_me(stack, user).status == 200
    # When they change only notify_email, then clear only the phone
    first = patch_me(stack, user, {"settings": {"notify_email": False}})
    second = patch_me(stack, user, {"phone": None})
    # Then each change touched only its own key
    assert first.status == second.status == 200
    assert first.body["settings"] == {"default_currency": "GBP", "notify_email": False}
    assert first.body["phone"] == "+447700900123"
    assert second.body["phone"] is None
    assert second.body["name"] == "Ada King"
    assert second.body["settings"] == {"default_currency": "GBP", "notify_email": False}


NOT_WRITABLE = [
    {"name": "Mallory", "role": "admin"},
    {"name": "Mallory", "email": "mallory@example.com"},
    {"name": "Mallory", "id": "usr_01JCQ3F6Z4V8T2K9M1N5P7R3S6"},
    {"name": "Mallory", "balances": [{"currency": "USD", "available": 100000000}]},
    {"name": "Mallory", "colour": "blue"},
    {"name": "Mallory", "settings": {"notify_email": False, "role": "admin"}},
    {"name": "Mallory", "phone": "07700 900123"},
    {"name": "Mallory", "settings": {"notify_email": "false"}},
    {"settings": {}},
    {},
]


def test_a_body_with_anything_not_writable_is_422_and_writes_nothing(stack, new_user):
    # Given a user, and their profile item as stored
    user = new_user("Alice")
    before = stored(stack, user.id, "PROFILE")
    for body in NOT_WRITABLE:
        # When they PATCH a body that is not entirely valid (mostly a valid name beside it)
        rejected = patch_me(stack, user, body)
        # Then it is a 422 problem naming the field, and the stored profile is as it was
        assert rejected.status == 422, (body, rejected.body)
        assert rejected.code == "validation_error"
        assert rejected.headers["Content-Type"] == "application/problem+json"
        assert rejected.body["errors"], body
        assert stored(stack, user.id, "PROFILE") == before, body
    for raw in ("", "null", "[]", "{", '"name"'):  # no body, or not an object: 422, never 500
        rejected = patch_me(stack, user, raw_body=raw)
        assert rejected.status == 422, (raw, rejected.body)
        assert stored(stack, user.id, "PROFILE") == before, raw


def test_the_422_for_an_empty_body_says_there_is_nothing_to_update(stack, new_user):
    user = new_user()
    rejected = patch_me(stack, user, {})
    assert rejected.status == 422
    assert "nothing to update" in rejected.body["detail"]


def test_patch_for_a_user_whose_profile_does_not_exist_is_404_and_creates_nothing(stack):
    # Given a valid token context for a user id that has no profile (e.g. deleted meanwhile)
    ghost = f"usr_{uuid.uuid4().hex[:26].upper()}"
    authorizer = {"user_id": ghost, "session_id": "ses_x", "role": "user"}
    # When it PATCHes
    missing = stack.call("UpdateMeFunction", "accounts/update_me.json", authorizer=authorizer)
    # Then 404, and no profile item was created by the update
    assert missing.status == 404
    assert missing.code == "not_found"
    assert stored(stack, ghost, "PROFILE") is None


def test_patch_without_an_authorizer_context_is_401(stack):
    assert stack.call("UpdateMeFunction", "accounts/update_me.json").status == 401


# --- payment methods -----------------------------------------------------------------------


def test_list_pages_three_methods_newest_first_two_at_a_time(stack, new_user):
    # Given a user with three cards, added in this order
    user = new_user()
    oldest, middle, newest = (add_card(stack, user) for _ in range(3))
    # When they list with limit=2, then follow the cursor
    first = list_methods(stack, user, limit="2")
    second = list_methods(stack, user, limit="2", cursor=first.body["next_cursor"])
    # Then the first page is the two newest and says there is more; the second is the last
    assert first.status == second.status == 200
    assert [m["id"] for m in first.body["data"]] == [newest, middle]
    assert first.body["has_more"] is True
    assert isinstance(first.body["next_cursor"], str)
    assert [m["id"] for m in second.body["data"]] == [oldest]
    assert second.body["has_more"] is False
    assert second.body["next_cursor"] is None
    # And no item shows anything but the public fields (no token material)
    for method in first.body["data"] + second.body["data"]:
        assert set(method) == RESPONSE_FIELDS
        assert method["card"]["last4"] == "4242"


def test_the_sample_lists_with_the_default_page_and_an_empty_list_is_an_empty_page(stack, new_user):
    user = new_user()
    empty = list_methods(stack, user)
    assert empty.status == 200
    assert empty.body == {"data": [], "has_more": False, "next_cursor": None}
    method = add_card(stack, user)
    listed = stack.call(
        "ListPaymentMethodsFunction",
        "accounts/list_payment_methods.json",
        authorizer=user.authorizer,
    )
    assert [m["id"] for m in listed.body["data"]] == [method]
    assert listed.body["has_more"] is False


def test_bad_limits_and_cursors_are_422(stack, new_user):
    user = new_user()
    add_card(stack, user)
    bad = [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "ten"},
        {"cursor": "not-ours"},
        {"cursor": "UFJPRklMRQ"},  # base64 of PROFILE: not a payment method's position
        {"cursor": "x" * 600},
    ]
    for query in bad:
        rejected = list_methods(stack, user, **query)
        assert rejected.status == 422, (query, rejected.body)
        assert rejected.code == "validation_error"


def test_get_returns_the_method_without_token_fields(stack, new_user):
    # Given a user with a card
    user = new_user()
    method = add_card(stack, user, "5555555555554444")
    # When they get it
    got = get_method(stack, user, method)
    # Then it is the card's public view, and the stored token fields are not in it
    assert got.status == 200
    assert set(got.body) == RESPONSE_FIELDS
    assert got.body["id"] == method
    assert got.body["card"]["brand"] == "mastercard"
    assert got.body["card"]["last4"] == "4444"
    assert set(stored(stack, user.id, f"PM#{method}") or {}) >= TOKEN_FIELDS
    assert not any(field in str(got.body) for field in TOKEN_FIELDS)


def test_delete_is_204_then_the_method_is_gone_and_a_second_delete_is_404(stack, new_user):
    # Given a user with two cards
    user = new_user()
    kept, deleted = add_card(stack, user), add_card(stack, user)
    # When they delete one
    first = delete_method(stack, user, deleted)
    # Then 204 with no body, and it is gone: get 404, not listed, not stored
    assert first.status == 204
    assert first.body is None
    assert get_method(stack, user, deleted).status == 404
    assert [m["id"] for m in list_methods(stack, user).body["data"]] == [kept]
    assert stored(stack, user.id, f"PM#{deleted}") is None
    # And deleting it again is 404
    again = delete_method(stack, user, deleted)
    assert again.status == 404
    assert again.code == "not_found"
    # And the other card is untouched
    assert get_method(stack, user, kept).status == 200


def test_an_unknown_or_malformed_id_is_404_on_get_and_delete(stack, new_user):
    # Given a user with a card
    user = new_user()
    card = add_card(stack, user)
    ids = [
        f"pm_{'0' * 26}",  # well formed, exists nowhere
        card.lower(),
        card + "0",
        "pm_1",
        "PROFILE",
        "BALANCE%23USD",
        "usr_01JCQ3F6Z4V8T2K9M1N5P7R3S6",
    ]
    for method_id in ids:
        # When they get or delete by an id that is not one of their methods
        for replied in (get_method(stack, user, method_id), delete_method(stack, user, method_id)):
            # Then 404, never 422 or 5xx
            assert replied.status == 404, (method_id, replied.body)
            assert replied.code == "not_found"
    # And nothing was deleted
    assert get_method(stack, user, card).status == 200
    assert stored(stack, user.id, "PROFILE") is not None


# --- object-level authorization ------------------------------------------------------------


def test_user_b_cannot_see_delete_or_patch_what_is_user_as(stack, new_user):
    # Given Alice with a card, and Bob
    alice, bob = new_user("Alice"), new_user("Bob")
    card = add_card(stack, alice)
    alice_before = stored(stack, alice.id, "PROFILE")
    unknown = f"pm_{'0' * 26}"
    # When Bob gets and deletes Alice's card by its id
    bob_get, bob_delete = get_method(stack, bob, card), delete_method(stack, bob, card)
    # Then both are 404, exactly as for an id that exists nowhere (nothing is leaked)
    assert bob_get.status == bob_delete.status == 404
    assert without_request_id(bob_get.body) == without_request_id(
        get_method(stack, bob, unknown).body
    )
    assert without_request_id(bob_delete.body) == without_request_id(
        delete_method(stack, bob, unknown).body
    )
    # And Bob's list does not show it, while Alice still has it
    assert list_methods(stack, bob).body["data"] == []
    assert get_method(stack, alice, card).status == 200
    assert stored(stack, alice.id, f"PM#{card}") is not None
    # When Bob PATCHes (there is no id in the path: the caller is the token's user)
    bob_patch = patch_me(stack, bob, {"name": "Mallory", "phone": "+15551234567"})
    # Then only Bob changed; Alice's stored profile is byte for byte as it was
    assert bob_patch.status == 200
    assert bob_patch.body["id"] == bob.id
    assert stored(stack, bob.id, "PROFILE")["name"] == {"S": "Mallory"}
    assert stored(stack, alice.id, "PROFILE") == alice_before


# --- balances per currency -----------------------------------------------------------------


def test_jpy_and_eur_top_ups_are_separate_balances_in_their_own_minor_units(stack, new_user):
    # Given a user with a card
    user = new_user()
    method = add_card(stack, user)

    def top_up(amount: int, currency: str) -> Reply:
        return stack.call(
            "CreateTopUpFunction",
            "payments/create_top_up.json",
            body={"amount": amount, "currency": currency, "payment_method_id": method},
            authorizer=user.authorizer,
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )

    # When they top up ¥1000 (JPY has no minor unit) and €25.00, and ¥500 more
    for amount, currency in ((1000, "JPY"), (2500, "EUR"), (500, "JPY")):
        topped = top_up(amount, currency)
        assert topped.status == 201, topped.body
        assert (topped.body["status"], topped.body["currency"]) == ("succeeded", currency)
    # Then both balances are listed, each in its own currency, never mixed
    balances = stack.call(
        "ListBalancesFunction", "accounts/list_balances.json", authorizer=user.authorizer
    )
    assert balances.status == 200
    assert sorted(balances.body["data"], key=lambda b: b["currency"]) == [
        {"currency": "EUR", "available": 2500},
        {"currency": "JPY", "available": 1500},
    ]


@pytest.mark.parametrize(
    ("function_id", "sample"),
    [
        ("ListPaymentMethodsFunction", "accounts/list_payment_methods.json"),
        ("ListSessionsFunction", "auth/list_sessions.json"),
        ("ListPaymentsFunction", "payments/list_payments.json"),
        ("ListTransactionsFunction", "ledger/list_transactions.json"),
        ("ListDisputesFunction", "disputes/list_disputes.json"),
    ],
)
def test_an_empty_cursor_is_no_cursor_any_list_gave_422(stack, new_user, function_id, sample):
    # `?cursor=` is not the first page: no list ever gives an empty cursor (schemathesis
    # found `cursor=` answered 200 where the document's rule made it a violation)
    user = new_user()
    listed = stack.call(function_id, sample, authorizer=user.authorizer, query={"cursor": ""})
    assert listed.status == 422, listed.body
    assert listed.body["code"] == "validation_error"
    assert listed.body["errors"][0]["field"] == "cursor"
