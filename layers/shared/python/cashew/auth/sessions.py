"""The sessions table: one item per login session, holding only a hash of its refresh token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cashew import dynamo
from cashew.config import get_settings


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

    def live(self, now_epoch: int) -> bool:
        return not self.revoked and self.expires_at > now_epoch


def _to_item(session: Session) -> dict[str, Any]:
    return {
        "pk": session.id,
        "user_id": session.user_id,
        "role": session.role,
        "refresh_hash": session.refresh_hash,
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
        created_at=item["created_at"],
        last_used_at=item["last_used_at"],
        user_agent=item.get("user_agent", ""),
        expires_at=int(item["expires_at"]),
        revoked=bool(item.get("revoked", False)),
    )


def create(session: Session) -> None:
    dynamo.put_item(get_settings().sessions_table, _to_item(session), "attribute_not_exists(pk)")


def get(session_id: str) -> Session | None:
    item = dynamo.get_item(get_settings().sessions_table, {"pk": session_id})
    return _from_item(item) if item else None
