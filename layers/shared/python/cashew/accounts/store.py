"""The accounts table: credentials, profiles, balances and payment methods.

Items (pk / sk):
    EMAIL#<email> / CREDENTIALS      user_id, password_hash, role
    USER#<id>     / PROFILE          id, email, name, phone, role, settings, created_at
    USER#<id>     / BALANCE#<CUR>    currency, available (minor units; never below 0)
    USER#<id>     / PM#<pm id>       card metadata and the envelope-encrypted gateway token
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from cashew import aws, dynamo
from cashew.config import get_settings
from cashew.errors import EmailTakenError


@dataclass(frozen=True, slots=True)
class Credentials:
    user_id: str
    password_hash: str
    role: str
    password_version: int  # bumped by every change of password (not by a rehash)


def _table() -> str:
    return get_settings().accounts_table


def _user(user_id: str) -> str:
    return f"USER#{user_id}"


def create_user(profile: dict[str, Any], password_hash: str) -> None:
    """Profile and credentials in one transaction; the email is unique."""
    table = _table()
    credentials = {
        "pk": f"EMAIL#{profile['email']}",
        "sk": "CREDENTIALS",
        "user_id": profile["id"],
        "password_hash": password_hash,
        "role": profile["role"],
    }
    try:
        new_only = "attribute_not_exists(pk)"
        dynamo.Transaction().add(
            "credentials", dynamo.put(table, credentials, condition=new_only)
        ).add(
            "profile",
            dynamo.put(
                table, {"pk": _user(profile["id"]), "sk": "PROFILE", **profile}, condition=new_only
            ),
        ).write()
    except dynamo.TransactionCanceled as exc:
        if exc.failed("credentials"):
            raise EmailTakenError("an account with this email already exists") from exc
        raise


def get_credentials(email: str) -> Credentials | None:
    item = dynamo.get_item(_table(), {"pk": f"EMAIL#{email}", "sk": "CREDENTIALS"})
    if item is None:
        return None
    return Credentials(
        user_id=item["user_id"],
        password_hash=item["password_hash"],
        role=item["role"],
        password_version=int(item.get("password_version", 0)),
    )


def replace_password_hash(
    email: str, old_hash: str, new_hash: str, *, new_password: bool = False
) -> bool:
    """Set a new hash unless the password changed meanwhile (then False, nothing written).
    A new password (not a rehash of the same one) bumps the password version, which ends
    every session created under the old one."""
    update = "SET password_hash = :new"
    values: dict[str, Any] = {":new": new_hash, ":old": old_hash}
    if new_password:
        update += " ADD password_version :one"
        values[":one"] = 1
    try:
        dynamo.update_item(
            _table(),
            {"pk": f"EMAIL#{email}", "sk": "CREDENTIALS"},
            update,
            values,
            condition="password_hash = :old",
        )
    except dynamo.ConditionFailed:
        return False
    return True


def password_unchanged_check(email: str, version: int) -> dynamo.Write:
    """A transaction item that fails if the password changed since `version` was read."""
    condition = "password_version = :version"
    if version == 0:
        condition = "(attribute_not_exists(password_version) OR password_version = :version)"
    key = {"pk": f"EMAIL#{email}", "sk": "CREDENTIALS"}
    return dynamo.check(_table(), key, condition, values={":version": version})


def get_profile(user_id: str) -> dict[str, Any] | None:
    item = dynamo.get_item(_table(), {"pk": _user(user_id), "sk": "PROFILE"})
    if item is None:
        return None
    item.pop("pk"), item.pop("sk")
    return item


def user_exists(user_id: str) -> bool:
    item = dynamo.get_item(_table(), {"pk": _user(user_id), "sk": "PROFILE"})
    return item is not None


def put_payment_method(user_id: str, method: dict[str, Any]) -> None:
    item = {"pk": _user(user_id), "sk": f"PM#{method['id']}", **method}
    dynamo.put_item(_table(), item, "attribute_not_exists(pk)")


def get_payment_method(user_id: str, method_id: str) -> dict[str, Any] | None:
    return dynamo.get_item(_table(), {"pk": _user(user_id), "sk": f"PM#{method_id}"})


def list_balances(user_id: str) -> list[dict[str, Any]]:
    items, _ = dynamo.query(
        _table(),
        "pk = :pk AND begins_with(sk, :prefix)",
        {":pk": _user(user_id), ":prefix": "BALANCE#"},
        consistent=True,
    )
    return items


def all_balances() -> Iterator[tuple[str, str, int]]:
    """Every (user id, currency, available) there is, for the audit: one Scan."""
    request: dict[str, Any] = {
        "TableName": _table(),
        "FilterExpression": "begins_with(sk, :prefix)",
        "ExpressionAttributeValues": dynamo.serialize({":prefix": "BALANCE#"}),
        # Only these are read (and the audit's policy allows nothing else): never a profile
        # or a password hash.
        "ProjectionExpression": "pk, sk, currency, available",
        "Select": "SPECIFIC_ATTRIBUTES",
        "ConsistentRead": True,
    }
    while True:
        response = aws.dynamodb().scan(**request)
        for raw in response.get("Items", []):
            item = dynamo.deserialize(raw)
            yield (
                str(item["pk"]).removeprefix("USER#"),
                str(item["currency"]),
                int(item["available"]),
            )
        if "LastEvaluatedKey" not in response:
            return
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


# -- items for money transactions (run by the payments module in one TransactWriteItems) --


def credit_item(user_id: str, currency: str, amount: int) -> dynamo.Write:
    return dynamo.update(
        _table(),
        {"pk": _user(user_id), "sk": f"BALANCE#{currency}"},
        "SET currency = :currency ADD available :amount",
        values={":currency": currency, ":amount": amount},
    )


def debit_item(user_id: str, currency: str, amount: int) -> dynamo.Write:
    """Debit that fails (ConditionalCheckFailed) rather than go below zero."""
    return dynamo.update(
        _table(),
        {"pk": _user(user_id), "sk": f"BALANCE#{currency}"},
        "SET available = available - :amount",
        condition="available >= :amount",
        values={":amount": amount},
    )


def user_exists_check(user_id: str) -> dynamo.Write:
    key = {"pk": _user(user_id), "sk": "PROFILE"}
    return dynamo.check(_table(), key, "attribute_exists(pk)")


def velocity_item(user_id: str, version: int, attempts: list[list[Any]]) -> dynamo.Write:
    """The write of a payer's attempt history (USER#<id> / VELOCITY, see accounts.velocity),
    valid only if its version is still `version` (0: never written)."""
    values: dict[str, Any] = {":attempts": attempts, ":next": version + 1}
    if version:
        condition = "#version = :current"
        values[":current"] = version
    else:
        condition = "attribute_not_exists(#version)"
    return dynamo.update(
        _table(),
        {"pk": _user(user_id), "sk": "VELOCITY"},
        "SET attempts = :attempts, #version = :next",
        condition=condition,
        names={"#version": "version"},
        values=values,
    )


def get_velocity(user_id: str) -> dict[str, Any] | None:
    """The payer's attempt history item (one strongly consistent GetItem)."""
    return dynamo.get_item(_table(), {"pk": _user(user_id), "sk": "VELOCITY"})


# -- profile updates; reading and deleting payment methods ----------------------------------

# What a profile update may write, whoever calls it: never role, email, id or balances.
_WRITABLE_PROFILE = frozenset({"name", "phone"})
_WRITABLE_SETTINGS = frozenset({"default_currency", "notify_email"})


def update_profile(
    user_id: str, fields: dict[str, Any], settings: dict[str, Any], updated_at: str
) -> dict[str, Any] | None:
    """Set the given profile fields and settings keys (the other keys of `settings` stay) in
    one UpdateItem conditional on the profile existing; the profile as it is afterwards, or
    None if there is no such user (nothing written). Profiles always have a `settings` map
    (register writes one), which the nested SET needs."""
    unwritable = (set(fields) - _WRITABLE_PROFILE) | (set(settings) - _WRITABLE_SETTINGS)
    if unwritable:
        raise ValueError(f"not writable: {sorted(unwritable)}")
    assignments = ["#updated_at = :updated_at"]
    names = {"#updated_at": "updated_at"}
    values: dict[str, Any] = {":updated_at": updated_at}
    for field in sorted(fields):
        assignments.append(f"#{field} = :{field}")
        names[f"#{field}"] = field
        values[f":{field}"] = fields[field]
    if settings:
        names["#settings"] = "settings"
    for key in sorted(settings):
        assignments.append(f"#settings.#s_{key} = :s_{key}")
        names[f"#s_{key}"] = key
        values[f":s_{key}"] = settings[key]
    try:
        item = dynamo.update_item(
            _table(),
            {"pk": _user(user_id), "sk": "PROFILE"},
            "SET " + ", ".join(assignments),
            values,
            condition="attribute_exists(pk)",
            names=names,
            return_new=True,
        )
    except dynamo.ConditionFailed:
        return None
    if item is None:  # pragma: no cover - ALL_NEW always returns the item
        return None
    item.pop("pk"), item.pop("sk")
    return item


def list_payment_methods(
    user_id: str, limit: int, after_id: str | None = None
) -> tuple[list[dict[str, Any]], bool]:
    """Up to `limit` of the user's payment methods, newest first (their ids are ULIDs, so sk
    order is creation order), starting after the method `after_id`; and whether more follow."""
    start = {"pk": _user(user_id), "sk": f"PM#{after_id}"} if after_id else None
    items, _ = dynamo.query(
        _table(),
        "pk = :pk AND begins_with(sk, :pm)",
        {":pk": _user(user_id), ":pm": "PM#"},
        limit=limit + 1,
        newest_first=True,
        start_key=start,
        consistent=True,
    )
    return items[:limit], len(items) > limit


def delete_payment_method(user_id: str, method_id: str) -> bool:
    """Delete the user's payment method; False (nothing deleted) if the user has none with
    this id. The key is under the user's own pk, so another user's method is never found."""
    try:
        dynamo.delete_item(
            _table(),
            {"pk": _user(user_id), "sk": f"PM#{method_id}"},
            "attribute_exists(pk)",
        )
    except dynamo.ConditionFailed:
        return False
    return True


def set_role(user_id: str, email: str, role: str) -> None:
    """Change a user's role on both its credentials and its profile, in one transaction."""
    table = _table()
    items = [
        ("credentials", f"EMAIL#{email}", "CREDENTIALS", "user_id = :user"),
        ("profile", _user(user_id), "PROFILE", "attribute_exists(pk)"),
    ]
    tx = dynamo.Transaction()
    for name, pk, sk, condition in items:
        tx.add(
            name,
            dynamo.update(
                table,
                {"pk": pk, "sk": sk},
                "SET #role = :role",
                condition=condition,
                names={"#role": "role"},
                values={":role": role, **({":user": user_id} if ":user" in condition else {})},
            ),
        )
    tx.write()
