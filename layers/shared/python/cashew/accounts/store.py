"""The accounts table: credentials, profiles, balances and payment methods.

Items (pk / sk):
    EMAIL#<email> / CREDENTIALS      user_id, password_hash, role
    USER#<id>     / PROFILE          id, email, name, phone, role, settings, created_at
    USER#<id>     / BALANCE#<CUR>    currency, available (minor units; never below 0)
    USER#<id>     / PM#<pm id>       card metadata and the envelope-encrypted gateway token
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from cashew import dynamo
from cashew.config import get_settings
from cashew.errors import EmailTakenError


@dataclass(frozen=True, slots=True)
class Credentials:
    user_id: str
    password_hash: str
    role: str


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
        dynamo.transact_write(
            [
                {
                    "Put": {
                        "TableName": table,
                        "Item": dynamo.serialize(credentials),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Put": {
                        "TableName": table,
                        "Item": dynamo.serialize(
                            {"pk": _user(profile["id"]), "sk": "PROFILE", **profile}
                        ),
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
            ]
        )
    except dynamo.TransactionCanceled as exc:
        if exc.failed(0):
            raise EmailTakenError("an account with this email already exists") from exc
        raise


def get_credentials(email: str) -> Credentials | None:
    item = dynamo.get_item(_table(), {"pk": f"EMAIL#{email}", "sk": "CREDENTIALS"})
    if item is None:
        return None
    return Credentials(
        user_id=item["user_id"], password_hash=item["password_hash"], role=item["role"]
    )


def replace_password_hash(email: str, old_hash: str, new_hash: str) -> None:
    """Upgrade a hash to the current parameters; a concurrent change of password wins."""
    with contextlib.suppress(dynamo.ConditionFailed):
        dynamo.update_item(
            _table(),
            {"pk": f"EMAIL#{email}", "sk": "CREDENTIALS"},
            "SET password_hash = :new",
            {":new": new_hash, ":old": old_hash},
            condition="password_hash = :old",
        )


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


# -- items for money transactions (run by the payments module in one TransactWriteItems) --


def credit_item(user_id: str, currency: str, amount: int) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": _table(),
            "Key": dynamo.serialize({"pk": _user(user_id), "sk": f"BALANCE#{currency}"}),
            "UpdateExpression": "SET currency = :currency ADD available :amount",
            "ExpressionAttributeValues": dynamo.serialize(
                {":currency": currency, ":amount": amount}
            ),
        }
    }


def debit_item(user_id: str, currency: str, amount: int) -> dict[str, Any]:
    """Debit that fails (ConditionalCheckFailed) rather than go below zero."""
    return {
        "Update": {
            "TableName": _table(),
            "Key": dynamo.serialize({"pk": _user(user_id), "sk": f"BALANCE#{currency}"}),
            "UpdateExpression": "SET available = available - :amount",
            "ConditionExpression": "available >= :amount",
            "ExpressionAttributeValues": dynamo.serialize({":amount": amount}),
        }
    }


def user_exists_check(user_id: str) -> dict[str, Any]:
    return {
        "ConditionCheck": {
            "TableName": _table(),
            "Key": dynamo.serialize({"pk": _user(user_id), "sk": "PROFILE"}),
            "ConditionExpression": "attribute_exists(pk)",
        }
    }
