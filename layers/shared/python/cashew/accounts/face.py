"""What the other modules may do with accounts (the only module of accounts they import besides
its models, passwords, cards and velocity): the store stays accounts' own.

Payments take their debit, credit and payee check as transaction items for their own
TransactWriteItems; auth reads and replaces credentials; the audit reads every balance.
"""

from __future__ import annotations

from collections.abc import Iterator

from cashew import dynamo
from cashew.accounts import store
from cashew.accounts.store import (
    Credentials,
    Held,
    PaymentMethod,
    Profile,
    StoredBalance,
    UnreadableBalance,
    UsersPage,
)
from cashew.config import get_settings
from cashew.errors import EmailUnverifiedError, NotFoundError

__all__ = [
    "GATHERINGS",
    "Credentials",
    "Held",
    "PaymentMethod",
    "Profile",
    "StoredBalance",
    "UnreadableBalance",
    "UsersPage",
    "admin_emails",
    "all_balances",
    "balances_of",
    "card_update_item",
    "credit_item",
    "debit",
    "debit_failed",
    "default_payment_method_id",
    "email_verified_item",
    "gather",
    "get_credentials",
    "get_payment_method",
    "get_profile",
    "has_profile",
    "held",
    "is_hot",
    "mark_method_expired",
    "mark_method_used",
    "method_of_token",
    "mfa_flag_item",
    "new_password_items",
    "password_unchanged_check",
    "password_version_read",
    "payee_check",
    "replace_password_hash",
    "require_verified_email",
    "set_role",
    "user_exists",
    "users_page",
]


# -- money: transaction items and reads for payments and the audit --------------------------


def credit_item(
    user_id: str, currency: str, amount: int, *, spread_by: str | None = None
) -> dynamo.Write:
    """The transaction item that adds `amount` to the user's balance in `currency`. For a
    hot payee (`CASHEW_HOT_PAYEES`), a payment's credit (`spread_by` its id) goes to one of
    the balance's credit shards, so that no item takes every payment."""
    if spread_by is None or not is_hot(user_id):
        return store.credit_item(user_id, currency, amount)
    shard = store.credit_shard(spread_by, get_settings().hot_payee_shards)
    return store.credit_item(user_id, currency, amount, shard)


def is_hot(user_id: str) -> bool:
    """Whether the user is a hot payee (CASHEW_HOT_PAYEES): its credits go to credit shards."""
    return user_id in get_settings().hot_payees


def held(user_id: str, currency: str, *, at_least: int | None = None) -> Held:
    """The user's balance in `currency` as its items hold it now: one strongly consistent
    Query (`Held.total` is the balance; 0 when none). Given `at_least`, the amount of a debit
    that a total below it refuses, a shortfall among credit shards is confirmed by reading
    the shards, then the main item (a Query may see a gathering move half applied)."""
    return store.held(user_id, currency, at_least=at_least)


GATHERINGS = 3
"""Times an operation whose debit failed while credit shards held the money gathers them and
tries again, before a 409 (other debits keep taking the money first)."""


def debit(user_id: str, currency: str, amount: int) -> dynamo.Transaction:
    """The transaction item (`debit`) that takes `amount` off the main balance item, failing
    rather than go below zero (`debit_failed`). A hot payee's money in credit shards is
    first moved into the main item by `gather`: no money transaction holds a shard."""
    return dynamo.Transaction().add("debit", store.debit_item(user_id, currency, amount))


def debit_failed(exc: dynamo.TransactionCanceled) -> bool:
    """Whether a transaction holding a `debit` failed on it: the main item held too little."""
    return exc.failed("debit")


def gather(user_id: str, currency: str, amount: int, seen: Held) -> None:
    """Before a debit of `amount` the main item cannot cover: move credit shards' money
    into it, fullest shard first, until it can (as far as `seen`, the balance's items as
    read, says). Each move is a transaction of its own, of two items (the shard, emptied
    of what it was seen to hold and failing unless it still holds it, and the main item),
    so it waits on no other shard and a money transaction never holds one. The user's
    balance is the same before and after each move. A move whose shard changed since it
    was seen stops the gathering: the debit then fails, and its caller reads again.
    ConflictError (409) when a shard stays contended, RateLimitedError (429) when it stays
    throttled: what was moved stays moved."""
    for shard, held_ in store.gather_plan(seen, amount):
        try:
            store.gather_items(user_id, currency, shard, held_).write_retrying()
        except dynamo.TransactionCanceled:
            return


def payee_check(user_id: str) -> dynamo.Write | None:
    """The transaction item that fails unless the user exists; None for a hot payee, whose
    profile every payment's transaction would otherwise hold (a transaction conflicts on
    every item it holds, a ConditionCheck too). A hot payee's existence is read instead, once
    per process: users are never deleted. Raises NotFoundError for one that does not exist."""
    if not is_hot(user_id):
        return store.user_exists_check(user_id)
    if user_id not in _HOT_PAYEES_SEEN:
        if not store.user_exists(user_id):
            raise NotFoundError("payee not found")
        _HOT_PAYEES_SEEN.add(user_id)
    return None


_HOT_PAYEES_SEEN: set[str] = set()  # hot payees whose profile was read: they exist


def user_exists(user_id: str) -> bool:
    return store.user_exists(user_id)


def get_payment_method(user_id: str, method_id: str) -> PaymentMethod | None:
    """The user's stored payment method (its card sealed), for a card charge."""
    return store.get_payment_method(user_id, method_id)


def default_payment_method_id(user_id: str) -> str | None:
    """The id of the user's default payment method, for a charge that names none."""
    return store.default_method_id(user_id)


def mark_method_used(user_id: str, method_id: str, at: str) -> bool:
    """After a successful charge: `last_used_at`, unless the method is gone or was used
    later (False: nothing written; never raises for that)."""
    return store.mark_used(user_id, method_id, at)


def mark_method_expired(user_id: str, method_id: str) -> bool:
    """After an `expired_card` decline, or a charge refused for a passed expiry month: the
    method is `expired`, unless it is gone or no longer active (False: nothing written)."""
    return store.mark_expired(user_id, method_id)


def method_of_token(token: str) -> tuple[str, str] | None:
    """(owner, payment method id) of the method the gateway token charges, for the gateway's
    card updates; None when no method of ours has it."""
    from cashew.accounts.cards import token_digest  # noqa: PLC0415

    attached = store.attached_token(token_digest(token))
    return (attached.owner, attached.method_id) if attached is not None else None


def card_update_item(
    user_id: str, method_id: str, last4: str, exp_month: int, exp_year: int
) -> dynamo.Write:
    """The transaction item of a gateway's card update (new last4 and expiry, `active`
    again), failing if the method is gone."""
    return store.card_update_item(user_id, method_id, last4, exp_month, exp_year)


def all_balances() -> Iterator[StoredBalance | UnreadableBalance]:
    """Every balance (an `UnreadableBalance` for an item that is none as stored), for the
    audit: one Scan."""
    return store.all_balances()


def has_profile(user_id: str) -> bool:
    """Whether the user exists, reading only the profile's key (for the audit's sweep)."""
    return store.has_profile(user_id)


def users_page(segment: int, segments: int, start: str | None, limit: int) -> UsersPage:
    """A page of one segment of the users with a profile or a balance, for the audit's
    sweep (`store.users_page`)."""
    return store.users_page(segment, segments, start, limit)


def balances_of(user_id: str) -> Iterator[StoredBalance | UnreadableBalance]:
    """The user's balances, strongly consistent, for the audit's re-checks."""
    return store.balances_of(user_id)


# -- credentials and roles: for auth --------------------------------------------------------


def get_credentials(email: str) -> Credentials | None:
    return store.get_credentials(email)


def replace_password_hash(email: str, old_hash: str, new_hash: str) -> bool:
    """A new hash of the same password (a rehash) unless the password changed meanwhile
    (then False, nothing written)."""
    return store.replace_password_hash(email, old_hash, new_hash)


def new_password_items(
    credentials: Credentials, new_hash: str
) -> tuple[dynamo.Write, dynamo.Write]:
    """The transaction items of a new password (credentials, then profile), for a reset's
    own transaction; the first fails if the password changed since `credentials` were read."""
    return store.new_password_items(credentials, new_hash)


def password_version_read(user_id: str) -> dynamo.Read[int | None]:
    """The read of the user's current password version (None: none recorded; NO_PROFILE,
    which no session has: no such user) for a BatchGetItem with the session, as the
    authorizer makes it."""
    return store.password_version_read(user_id)


def password_unchanged_check(email: str, version: int) -> dynamo.Write:
    """The transaction item that fails if the password changed since `version` was read."""
    return store.password_unchanged_check(email, version)


def mfa_flag_item(user_id: str, enabled: bool) -> dynamo.Write:
    """The transaction item that shows MFA on or off in the user's profile (`mfa_enabled`),
    for auth's MFA confirm and disable."""
    return store.mfa_flag_item(user_id, enabled)


def email_verified_item(user_id: str, email: str) -> dynamo.Write:
    """The transaction item that marks the user's email verified (failing unless the
    profile's email is still `email`), for auth's email verification."""
    return store.email_verified_item(user_id, email)


def require_verified_email(user_id: str) -> None:
    """The gate of every money-moving POST (API.md "Users and accounts"): with
    CASHEW_REQUIRE_VERIFIED_EMAIL true, EmailUnverifiedError unless the user's email is
    verified, read at once (one strongly consistent GetItem); with it false, no AWS call."""
    if not get_settings().require_verified_email:
        return
    if not store.email_verified(user_id):
        raise EmailUnverifiedError("verify your email address before moving money")


def get_profile(user_id: str) -> Profile | None:
    return store.get_profile(user_id)


def set_role(user_id: str, email: str, role: str) -> None:
    """The user's role on its credentials and profile, in one transaction."""
    store.set_role(user_id, email, role)


def admin_emails() -> Iterator[str]:
    """The email of every admin (for the webhooks' notice that an endpoint was disabled)."""
    return store.admin_emails()
