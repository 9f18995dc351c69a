"""The sessions table's sessions and rotated refresh tokens (its `LOGIN#` items, the
login-attempt counters, are `login_attempts.py`'s).

Items, each kind a record class below with its `to_item` / `from_item`:
    pk = ses_...        a session (`Session`): user_id, email, role, refresh_hash (only a
                        hash of the current refresh token), password_version (of the password
                        it was created under), created_at, last_used_at, user_agent,
                        expires_at (TTL), revoked. Index UserIndex: (user_id, created_at).
    pk = RT#<hash>      a refresh token rotated away (`RotatedToken`): session_id; expires
                        with its session. Presenting it again is a reuse, for the whole life
                        of the session.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Self

from cashew import aws, clock, dynamo, ids
from cashew.config import get_settings
from cashew.cursor import decode, encode

USER_INDEX = "UserIndex"


@dataclass(frozen=True, slots=True)
class Session:
    id: str
    user_id: str
    role: str
    refresh_hash: str
    created_at: str
    last_used_at: str
    user_agent: str
    expires_at: int
    revoked: bool
    email: str = ""
    password_version: int = 0

    def live(self, now_epoch: int) -> bool:
        return not self.revoked and self.expires_at > now_epoch

    def to_item(self) -> dict[str, Any]:
        return {
            "pk": self.id,
            "user_id": self.user_id,
            "role": self.role,
            "refresh_hash": self.refresh_hash,
            "email": self.email,
            "password_version": self.password_version,
            "created_at": self.created_at,
            "last_used_at": self.last_used_at,
            "user_agent": self.user_agent,
            "expires_at": self.expires_at,
            "revoked": self.revoked,
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        return cls(
            id=item["pk"],
            user_id=item["user_id"],
            role=item["role"],
            refresh_hash=item["refresh_hash"],
            email=str(item.get("email", "")),
            password_version=int(item.get("password_version", 0)),
            created_at=item["created_at"],
            last_used_at=item["last_used_at"],
            user_agent=item.get("user_agent", ""),
            expires_at=int(item["expires_at"]),
            revoked=bool(item.get("revoked", False)),
        )


@dataclass(frozen=True, slots=True)
class RotatedToken:
    """A refresh token rotated away from its session, kept (by hash) as long as the session."""

    refresh_hash: str
    session_id: str
    expires_at: int

    def to_item(self) -> dict[str, Any]:
        return {
            "pk": f"RT#{self.refresh_hash}",
            "session_id": self.session_id,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        return cls(
            refresh_hash=str(item["pk"]).removeprefix("RT#"),
            session_id=str(item["session_id"]),
            expires_at=int(item["expires_at"]),
        )


def _table() -> str:
    return get_settings().sessions_table


def create(
    session: Session, *, unless: dynamo.Write, also: dynamo.Transaction | None = None
) -> bool:
    """Store a new session in one transaction with the `unless` condition check (the
    password it was granted under is still current) and the items of `also` (a second
    factor used up); False if `unless` failed (TransactionCanceled if an item of `also` did)."""
    tx = dynamo.Transaction().add(
        "session",
        dynamo.put(_table(), session.to_item(), condition="attribute_not_exists(pk)"),
    )
    tx.add("unless", unless)
    if also is not None:
        tx.extend(also)
    try:
        tx.write()
    except dynamo.TransactionCanceled as exc:
        if exc.failed("unless"):
            return False
        raise
    return True


def get(session_id: str) -> Session | None:
    if not session_id.startswith("ses_"):
        return None
    item = dynamo.get_item(_table(), {"pk": session_id})
    return Session.from_item(item) if item else None


def rotate(session: Session, new_hash: str) -> bool:
    """Replace the refresh hash, only if it is still the one presented (so concurrent
    refreshes with one token cannot both succeed) and the session is live; the old hash is
    kept as rotated away for as long as the session lives."""
    try:
        dynamo.Transaction().add(
            "session",
            dynamo.update(
                _table(),
                {"pk": session.id},
                "SET refresh_hash = :new, last_used_at = :now",
                condition="refresh_hash = :old AND revoked = :false",
                values={
                    ":new": new_hash,
                    ":now": clock.utcnow_str(),
                    ":old": session.refresh_hash,
                    ":false": False,
                },
            ),
        ).add(
            "rotated",
            dynamo.put(
                _table(),
                RotatedToken(session.refresh_hash, session.id, session.expires_at).to_item(),
                condition="attribute_not_exists(pk)",
            ),
        ).write()
    except dynamo.TransactionCanceled as exc:
        if exc.failed("session", "rotated"):
            return False
        raise
    return True


def version_item(session_id: str, user_id: str, password_version: int) -> dynamo.Write:
    """The transaction item that moves one of `user_id`'s live sessions to a new password
    version (the session that changed the password keeps going under it)."""
    return dynamo.update(
        _table(),
        {"pk": session_id},
        "SET password_version = :version",
        condition="attribute_exists(pk) AND user_id = :user AND revoked = :false",
        values={":version": password_version, ":user": user_id, ":false": False},
    )


def read(session_id: str) -> dynamo.Read[Session | None]:
    """The read of a session (None for none, or an id that is not a session's) for a
    BatchGetItem with the user's password version, as the authorizer makes it."""
    key = {"pk": session_id if session_id.startswith("ses_") else "ses_"}
    return dynamo.Read(_table(), key, _session_of)


def _session_of(item: dynamo.Item | None) -> Session | None:
    return Session.from_item(item) if item and str(item.get("pk", "")).startswith("ses_") else None


def rotated_from(refresh_hash: str) -> str | None:
    """The session whose refresh token with this hash was rotated away, if any."""
    item = dynamo.get_item(_table(), {"pk": f"RT#{refresh_hash}"})
    return RotatedToken.from_item(item).session_id if item else None


def revoke(session_id: str, user_id: str) -> bool:
    """Revoke one of `user_id`'s sessions; False if it is not theirs (or does not exist)."""
    try:
        dynamo.update_item(
            _table(),
            {"pk": session_id},
            "SET revoked = :true",
            {":true": True, ":user": user_id},
            condition="attribute_exists(pk) AND user_id = :user",
        )
    except dynamo.ConditionFailed:
        return False
    return True


def list_live(user_id: str, limit: int, cursor: str | None) -> tuple[list[Session], str | None]:
    """The user's live sessions, newest first, and the cursor of the next page."""
    now = clock.epoch()
    request: dict[str, Any] = {
        "TableName": _table(),
        "IndexName": USER_INDEX,
        "KeyConditionExpression": "user_id = :user",
        "FilterExpression": "revoked = :false AND expires_at > :now",
        "ExpressionAttributeValues": dynamo.serialize(
            {":user": user_id, ":false": False, ":now": now}
        ),
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if cursor:
        fields = {
            "pk": ids.PATTERNS["ses"],
            "user_id": ids.PATTERNS["usr"],
            "created_at": clock.RFC3339,
        }
        start = decode(cursor, fields, user_id=user_id)
        request["ExclusiveStartKey"] = dynamo.serialize(start)
    response = aws.dynamodb().query(**request)
    found = [Session.from_item(dynamo.deserialize(i)) for i in response.get("Items", [])]
    last = response.get("LastEvaluatedKey")
    return found, (encode(dynamo.deserialize(last)) if last else None)


def revoke_all_except(user_id: str, keep_session_id: str) -> int:
    """Revoke every live session of the user but one; returns how many were revoked."""
    revoked, cursor = 0, None
    while True:
        page, cursor = list_live(user_id, 100, cursor)
        for session in page:
            if session.id != keep_session_id and revoke(session.id, user_id):
                revoked += 1
        if cursor is None:
            return revoked
