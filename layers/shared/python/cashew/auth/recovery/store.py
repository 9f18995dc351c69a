"""Password-reset and email-verification tokens, kept in the sessions table beside the
sessions (auth's table).

Items (the records `ResetToken` and `VerifyToken`, one `EmailedToken` each, with their
`to_item` / `from_item`):
    pk = RESET#<user id>   token_hash (SHA-256 of the token: the token itself is never
                           stored), email, created_at, expires_at (TTL). One item per user:
                           a newer request overwrites it, which voids the older token; a
                           confirm deletes it conditionally, so a token is used once.
    pk = VERIFY#<user id>  the same for the email-verification token (24 h): token_hash,
                           email (the address the link was sent to), created_at, expires_at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

from cashew import clock, dynamo
from cashew.config import get_settings


@dataclass(frozen=True, slots=True)
class EmailedToken:
    """A user's current emailed token of one purpose (the subclass's `PREFIX`)."""

    PREFIX: ClassVar[str] = ""
    user_id: str
    email: str
    token_hash: str
    created_at: str
    expires_at: int

    def to_item(self) -> dict[str, Any]:
        return {
            "pk": f"{self.PREFIX}#{self.user_id}",
            "email": self.email,
            "token_hash": self.token_hash,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        return cls(
            user_id=str(item["pk"]).removeprefix(f"{cls.PREFIX}#"),
            email=str(item["email"]),
            token_hash=str(item["token_hash"]),
            created_at=str(item["created_at"]),
            expires_at=int(item["expires_at"]),
        )


class ResetToken(EmailedToken):
    __slots__ = ()
    PREFIX = "RESET"


class VerifyToken(EmailedToken):
    __slots__ = ()
    PREFIX = "VERIFY"


def _table() -> str:
    return get_settings().sessions_table


def put(token: ResetToken, *, known: bool) -> bool:
    """Store the user's current token (voiding any older one), for a `known` account. For
    an unknown email the same PutItem is made with a condition that fails (the item does not
    exist), so the request costs the same and nothing is written: False."""
    condition = None if known else "attribute_exists(pk)"
    try:
        dynamo.put_item(_table(), token.to_item(), condition=condition)
    except dynamo.ConditionFailed:
        return False
    return known


def _get[T: EmailedToken](kind: type[T], user_id: str) -> T | None:
    item = dynamo.get_item(_table(), {"pk": f"{kind.PREFIX}#{user_id}"}, consistent=True)
    return kind.from_item(item) if item else None


def _consume(kind: type[EmailedToken], user_id: str, token_hash: str) -> dynamo.Write:
    """The transaction item that deletes the user's token of `kind`, failing unless it is
    still the current one (`token_hash`) and unexpired: of concurrent uses, one passes."""
    return dynamo.delete(
        _table(),
        {"pk": f"{kind.PREFIX}#{user_id}"},
        condition="token_hash = :hash AND expires_at > :now",
        values={":hash": token_hash, ":now": clock.epoch()},
    )


def get(user_id: str) -> ResetToken | None:
    return _get(ResetToken, user_id)


def consume_item(user_id: str, token_hash: str) -> dynamo.Write:
    return _consume(ResetToken, user_id, token_hash)


def put_verification(token: VerifyToken) -> None:
    """Store the user's current verification token, voiding any older one."""
    dynamo.put_item(_table(), token.to_item())


def get_verification(user_id: str) -> VerifyToken | None:
    return _get(VerifyToken, user_id)


def consume_verification_item(user_id: str, token_hash: str) -> dynamo.Write:
    return _consume(VerifyToken, user_id, token_hash)
