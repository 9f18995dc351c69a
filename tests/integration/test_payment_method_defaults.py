"""Payment methods after transactions (API.md v1.1): status, default and last_used_at on every
method shown, the first card the default, PATCH {default: true}, and deleting the default
promoting the most recently used other active card. Handlers with their events/ samples
against the embedded endpoint."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from cashew.accounts import store
from tests.integration.conftest import add_card, call_with_id
from tests.support.lambda_runtime import Reply


def list_methods(stack, user) -> list[dict[str, Any]]:
    reply = stack.call(
        "ListPaymentMethodsFunction", "accounts/list_payment_methods.json",
        authorizer=user.authorizer, query={"limit": "100"},
    )  # fmt: skip
    assert reply.status == 200, reply.body
    return list(reply.body["data"])


def defaults(stack, user) -> list[str]:
    return [m["id"] for m in list_methods(stack, user) if m["default"]]


def make_default(stack, user, method_id: str, body: Any = None, **kw: Any) -> Reply:
    return call_with_id(
        stack, "UpdatePaymentMethodFunction", "accounts/update_payment_method.json", method_id,
        authorizer=user.authorizer, body=body if body is not None else {"default": True}, **kw,
    )  # fmt: skip


def get_method(stack, user, method_id: str) -> Reply:
    return call_with_id(
        stack, "GetPaymentMethodFunction", "accounts/get_payment_method.json", method_id,
        authorizer=user.authorizer,
    )  # fmt: skip


def delete_method(stack, user, method_id: str) -> Reply:
    return call_with_id(
        stack, "DeletePaymentMethodFunction", "accounts/delete_payment_method.json", method_id,
        authorizer=user.authorizer,
    )  # fmt: skip


def test_the_first_card_is_the_default_and_every_method_shows_status_and_last_use(stack, new_user):
    # Given a user who adds two cards
    user = new_user()
    added = stack.call(
        "AddPaymentMethodFunction", "accounts/add_payment_method.json", authorizer=user.authorizer
    )
    second = add_card(stack, user, "5555555555554444")
    # Then the first is the default (the POST says so), the second is not; both are active
    # and never used, and GET one shows the same as the list
    assert added.status == 201, added.body
    assert (added.body["default"], added.body["status"], added.body["last_used_at"]) == (
        True, "active", None,
    )  # fmt: skip
    listed = {m["id"]: m for m in list_methods(stack, user)}
    assert {i: (m["default"], m["status"], m["last_used_at"]) for i, m in listed.items()} == {
        added.body["id"]: (True, "active", None),
        second: (False, "active", None),
    }
    assert get_method(stack, user, second).body == listed[second]
    assert get_method(stack, user, added.body["id"]).body == listed[added.body["id"]]


def test_patch_default_moves_the_default_and_only_one_method_is_it(stack, new_user):
    # Given a user with three cards, the first the default
    user = new_user()
    first, second, third = (add_card(stack, user) for _ in range(3))
    assert defaults(stack, user) == [first]
    # When they make the third the default
    reply = make_default(stack, user, third)
    # Then it is 200 with the method, now the default, and the first no longer is
    assert reply.status == 200, reply.body
    assert (reply.body["id"], reply.body["default"]) == (third, True)
    assert defaults(stack, user) == [third]
    assert get_method(stack, user, first).body["default"] is False
    # And making the default the default again changes nothing
    assert make_default(stack, user, third).status == 200
    assert defaults(stack, user) == [third]
    # When the first and the second are made the default at the same time, many times
    with ThreadPoolExecutor(max_workers=6) as pool:
        replies = list(pool.map(lambda m: make_default(stack, user, m), [first, second] * 6))
    # Then each succeeded, and exactly one of them is the default
    assert {r.status for r in replies} == {200}
    assert len(defaults(stack, user)) == 1
    assert defaults(stack, user)[0] in (first, second)


def test_concurrent_first_cards_make_exactly_one_default(stack, new_user):
    # Given a user with no card, who adds six at the same time
    user = new_user()
    with ThreadPoolExecutor(max_workers=6) as pool:
        added = list(pool.map(lambda _: add_card(stack, user), range(6)))
    # Then exactly one of them is the default
    assert len(set(added)) == 6
    assert len(defaults(stack, user)) == 1


def test_patch_refuses_anything_but_default_true_and_others_methods(stack, new_user):
    # Given Alice with two cards (the first the default), and Bob
    alice, bob = new_user("Alice"), new_user("Bob")
    first, second = add_card(stack, alice), add_card(stack, alice)
    for body in ({"default": False}, {}, {"default": "true"}, {"default": 1},
                 {"default": True, "status": "active"}, {"default": True, "card": {}}):  # fmt: skip
        # When she PATCHes with anything but {default: true}
        rejected = make_default(stack, alice, second, body)
        # Then it is 422 and the default is as it was
        assert (rejected.status, rejected.code) == (422, "validation_error"), (body, rejected.body)
    assert defaults(stack, alice) == [first]
    # When Bob makes Alice's card his default, or an id that exists nowhere, or a malformed one
    for method_id in (second, f"pm_{'0' * 26}", "nope"):
        reply = make_default(stack, bob, method_id)
        # Then it is 404, and nothing of Alice's or Bob's changed
        assert (reply.status, reply.code) == (404, "not_found"), method_id
    assert defaults(stack, alice) == [first]
    assert store.default_method_id(bob.id) is None


def test_deleting_the_default_promotes_the_most_recently_used_other_active_card(stack, new_user):
    # Given a user with four cards: the default, one used an hour ago, one used a minute ago
    # but expired since, and one never used (the newest)
    user = new_user()
    default, older_use, expired, never = (add_card(stack, user) for _ in range(4))
    assert store.mark_used(user.id, older_use, "2030-01-01T10:00:00.000Z")
    assert store.mark_used(user.id, expired, "2030-01-01T10:59:00.000Z")
    assert store.mark_expired(user.id, expired)
    # When the default is deleted
    assert delete_method(stack, user, default).status == 204
    # Then the most recently used other *active* card is the default
    assert defaults(stack, user) == [older_use]
    # When that one is deleted too: the remaining active card, never used, is
    assert delete_method(stack, user, older_use).status == 204
    assert defaults(stack, user) == [never]
    # When a card that is not the default is deleted, the default stays
    assert delete_method(stack, user, expired).status == 204
    assert defaults(stack, user) == [never]
    # When the last card goes, the user has no default; the next card added is it
    assert delete_method(stack, user, never).status == 204
    assert store.default_method_id(user.id) is None
    again = add_card(stack, user)
    assert defaults(stack, user) == [again]


def test_deleting_the_default_when_no_other_card_is_active_leaves_no_default(stack, new_user):
    # Given a default card and an expired one
    user = new_user()
    default, expired = add_card(stack, user), add_card(stack, user)
    assert store.mark_expired(user.id, expired)
    # When the default is deleted
    assert delete_method(stack, user, default).status == 204
    # Then the expired card is not made the default: there is none
    assert defaults(stack, user) == []
    assert store.default_method_id(user.id) is None
    # And it cannot be made the default by hand either: it is unusable, and nothing changes
    refused = make_default(stack, user, expired)
    assert (refused.status, refused.body["code"]) == (422, "payment_method_unusable")
    assert store.default_method_id(user.id) is None


def test_a_card_past_its_expiry_month_is_not_made_the_default(stack, new_user, monkeypatch):
    # Given a default card and a second one, stored active, whose expiry month then passes
    user = new_user()
    default, other = add_card(stack, user), add_card(stack, user)
    monkeypatch.setattr(store.clock, "now", lambda: datetime(2099, 1, 1, tzinfo=UTC))
    # When the second is made the default
    refused = make_default(stack, user, other)
    # Then it is 422 payment_method_unusable and the default stays
    assert (refused.status, refused.body["code"]) == (422, "payment_method_unusable")
    assert store.default_method_id(user.id) == default


def test_deletes_and_default_changes_racing_leave_one_default_that_exists(stack, new_user):
    # Given a user with four cards
    user = new_user()
    cards = [add_card(stack, user) for _ in range(4)]
    # When two are deleted while the others are made the default, at the same time
    work = [("delete", cards[0]), ("default", cards[2]), ("delete", cards[1]),
            ("default", cards[3])] * 2  # fmt: skip

    def run(step: tuple[str, str]) -> int:
        action, method = step
        if action == "delete":
            return delete_method(stack, user, method).status
        return make_default(stack, user, method).status

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(run, work))
    # Then nothing failed but a second delete of a deleted card (404), and the one default
    # left is one of the cards that remain
    assert set(statuses) <= {200, 204, 404}, statuses
    remaining = [m["id"] for m in list_methods(stack, user)]
    assert sorted(remaining) == sorted(cards[2:])
    assert len(defaults(stack, user)) == 1
    assert store.default_method_id(user.id) in remaining
