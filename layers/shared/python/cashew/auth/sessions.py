"""The sessions table: login sessions and login-attempt counters.

Items:
    pk = ses_...        a session: user_id, role, refresh_hash (only a hash of the current
                        refresh token), previous_hashes (the last rotated-away hashes, for
                        reuse detection), created_at, last_used_at, user_agent, expires_at
                        (TTL), revoked. Index UserIndex: (user_id, created_at).
    pk = LOGIN#<sha256 of the email>
                        attempts: epoch seconds of recent login attempts; expires_at (TTL).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from cashew import aws, clock, dynamo
from cashew.config import get_settings
from cashew.errors import InvalidRequestError

USER_INDEX = "UserIndex"
PREVIOUS_HASHES_KEPT = 10


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
    previous_hashes: list[str] = field(default_factory=list)

    def live(self, now_epoch: int) -> bool:
        return not self.revoked and self.expires_at > now_epoch


def _table() -> str:
    return get_settings().sessions_table


def _to_item(session: Session) -> dict[str, Any]:
    return {
        "pk": session.id,
        "user_id": session.user_id,
        "role": session.role,
        "refresh_hash": session.refresh_hash,
        "previous_hashes": session.previous_hashes,
        "created_at": session.created_at,
        "last_used_at": session.last_used_at,
        "user_agent": session.user_agent,
        "expires_at": session.expires_at,
        "revoked": session.revoked,
    }


def _from_item(item: dict[str, Any]) -> Session:
    return Session(
        id=item["pk"],
        user_id=item["user_id"],
        role=item["role"],
        refresh_hash=item["refresh_hash"],
        previous_hashes=list(item.get("previous_hashes") or []),
        created_at=item["created_at"],
        last_used_at=item["last_used_at"],
        user_agent=item.get("user_agent", ""),
        expires_at=int(item["expires_at"]),
        revoked=bool(item.get("revoked", False)),
    )


def create(session: Session) -> None:
    dynamo.put_item(_table(), _to_item(session), "attribute_not_exists(pk)")


def get(session_id: str) -> Session | None:
    if not session_id.startswith("ses_"):
        return None
    item = dynamo.get_item(_table(), {"pk": session_id})
    return _from_item(item) if item else None


def rotate(session: Session, new_hash: str) -> bool:
    """Replace the refresh hash, only if it is still the one presented (so concurrent
    refreshes with one token cannot both succeed) and the session is live."""
    previous = [session.refresh_hash, *session.previous_hashes][:PREVIOUS_HASHES_KEPT]
    try:
        dynamo.update_item(
            _table(),
            {"pk": session.id},
            "SET refresh_hash = :new, previous_hashes = :previous, last_used_at = :now",
            {
                ":new": new_hash,
                ":previous": previous,
                ":now": clock.utcnow_str(),
                ":old": session.refresh_hash,
                ":false": False,
            },
            condition="refresh_hash = :old AND revoked = :false",
        )
    except dynamo.ConditionFailed:
        return False
    return True


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


def _encode_cursor(key: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode()


def _decode_cursor(cursor: str, user_id: str) -> dict[str, Any]:
    invalid = InvalidRequestError(
        "cursor is invalid", errors=[{"field": "cursor", "message": "is invalid"}]
    )
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except ValueError as exc:
        raise invalid from exc
    if (
        not isinstance(key, dict)
        or key.get("user_id") != user_id
        or set(key)
        != {
            "pk",
            "user_id",
            "created_at",
        }
    ):
        raise invalid
    return key


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
        request["ExclusiveStartKey"] = dynamo.serialize(_decode_cursor(cursor, user_id))
    response = aws.dynamodb().query(**request)
    found = [_from_item(dynamo.deserialize(i)) for i in response.get("Items", [])]
    last = response.get("LastEvaluatedKey")
    return found, (_encode_cursor(dynamo.deserialize(last)) if last else None)


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


# -- login attempts ---------------------------------------------------------------------


def record_login_attempt(key: str, now: int, keep_for: int) -> list[int]:
    """Append an attempt atomically (concurrent attempts are all counted) and return every
    attempt on record."""
    client = aws.dynamodb()
    response = client.update_item(
        TableName=_table(),
        Key=dynamo.serialize({"pk": key}),
        UpdateExpression=(
            "SET attempts = list_append(if_not_exists(attempts, :empty), :now), "
            "expires_at = :expires"
        ),
        ExpressionAttributeValues=dynamo.serialize(
            {":empty": [], ":now": [now], ":expires": now + keep_for}
        ),
        ReturnValues="ALL_NEW",
    )
    return [int(t) for t in dynamo.deserialize(response["Attributes"]).get("attempts", [])]


def clear_login_attempts(key: str) -> None:
    dynamo.update_item(_table(), {"pk": key}, "SET attempts = :empty", {":empty": []})
